"""mlflow-steps: fail the build when an installed package needs a shared library the image
lacks (e.g. lightgbm's libgomp.so.1 on a slim base), before anything is pushed.

Usage: python check-libraries.py SITE_PACKAGES_DIR...
Runs `ldd` on every shared object under the folders; a library that ldd cannot resolve, and
that no file of the environment provides (packages that load their own libraries first), is
reported with the file that needs it and the Debian package that provides it, where known.
Stdlib only, Python 3.6+: it runs with the image's Python.
"""

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

# Library -> Debian package (bookworm names) for the common ones.
DEBIAN_PACKAGES = {
    "libgomp.so.1": "libgomp1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
    "libX11.so.6": "libx11-6",
    "libxcb.so.1": "libxcb1",
    "libgfortran.so.5": "libgfortran5",
    "libquadmath.so.0": "libquadmath0",
    "libopenblas.so.0": "libopenblas0",
    "liblapack.so.3": "liblapack3",
    "libblas.so.3": "libblas3",
    "libomp.so.5": "libomp5",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libsndfile.so.1": "libsndfile1",
    "libgeos_c.so.1": "libgeos-c1v5",
    "libpq.so.5": "libpq5",
    "libaio.so.1": "libaio1",
    "libodbc.so.2": "libodbc2",
    "libsqlite3.so.0": "libsqlite3-0",
    "libffi.so.8": "libffi8",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3",
    "libzstd.so.1": "libzstd1",
    "libjpeg.so.62": "libjpeg62-turbo",
    "libpng16.so.16": "libpng16-16",
    "libxml2.so.2": "libxml2",
    "libxslt.so.1": "libxslt1.1",
    "libmagic.so.1": "libmagic1",
    "libcairo.so.2": "libcairo2",
    "libasound.so.2": "libasound2",
}
# Provided on the node at run time (the GPU driver), never in an image.
RUN_TIME_PROVIDED = re.compile(r"^lib(cuda|nvidia-\S+|nvcuvid|nvoptix)\.so")
SHARED_OBJECT = re.compile(r"\.so(\.[0-9.]+)?$")
NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found")
BATCH = 64


def shared_objects(roots):
    found = []
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                if SHARED_OBJECT.search(name) and os.path.isfile(path):
                    found.append(path)
    return sorted(found)


def unresolved(ldd, paths):
    """{library: [paths that need it]} for one batch of files."""
    done = subprocess.run(
        [ldd, *paths], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True
    )
    missing = {}
    current = paths[0] if len(paths) == 1 else None
    for line in done.stdout.splitlines():
        if not line.startswith(("\t", " ")) and line.endswith(":"):
            current = line[:-1]
            continue
        match = NOT_FOUND.match(line)
        if match and current:
            missing.setdefault(match.group(1), []).append(current)
    return missing


def check(roots):
    """Problems, one line per missing library; empty when every library resolves."""
    ldd = shutil.which("ldd")
    if not ldd:
        print("mlflow-steps: no ldd in the image; shared libraries were not checked")
        return []
    paths = shared_objects(roots)
    provided = {os.path.basename(p) for p in paths}
    batches = [paths[i : i + BATCH] for i in range(0, len(paths), BATCH)]
    missing = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for found in pool.map(lambda batch: unresolved(ldd, batch), batches):
            for library, needers in found.items():
                missing.setdefault(library, []).extend(needers)
    problems = []
    for library in sorted(missing):
        if library in provided or RUN_TIME_PROVIDED.match(library):
            continue
        needers = sorted(set(missing[library]))
        first = relative(needers[0], roots)
        more = f" and {len(needers) - 1} more" if len(needers) > 1 else ""
        package = DEBIAN_PACKAGES.get(library)
        fix = (
            f'add system_packages="{package}"'
            if package
            else "add the Debian package that provides it to system_packages"
        )
        problems.append(f"{library}, needed by {first}{more}: {fix}")
    return problems


def relative(path, roots):
    for root in roots:
        if path.startswith(root.rstrip("/") + "/"):
            rel = path[len(root.rstrip("/")) + 1 :]
            return "{} (package {})".format(rel, rel.split("/")[0])
    return path


def main(argv):
    roots = sorted(set(os.path.abspath(a) for a in argv[1:]))
    problems = check(roots)
    if not problems:
        return 0
    sys.stderr.write(
        "mlflow-steps: the image lacks shared libraries that installed packages need; "
        "the build stops here and nothing is pushed:\n"
        + "".join(f"  {p}\n" for p in problems)
        + "Set the builder input system_packages (Debian packages, space-separated), e.g. "
        "--system-packages / FUSEML_SYSTEM_PACKAGES / SYSTEM_PACKAGES.\n"
    )
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
