"""mlflow-steps: fail the build when an installed package needs a shared library the image
lacks (e.g. lightgbm's libgomp.so.1 on a slim base), before anything is pushed.

Usage: python check-libraries.py SITE_PACKAGES_DIR...
Every shared object under the folders is read as ELF (its DT_NEEDED libraries, RPATH and
RUNPATH): a needed library found in the loader's cache (`ldconfig -p`), in the object's
RPATH/RUNPATH ($ORIGIN expanded), on LD_LIBRARY_PATH or among the environment's own files
(packages that load their own libraries first) is fine. Only the objects left with a suspect
go through `ldd`, the authority: what it cannot resolve is reported with the file that needs
it and the Debian package that provides it, where known. (ldd on every object of a
scientific stack took 1.7 s here; the ELF pass takes a few hundredths.)
Stdlib only, Python 3.6+: it runs with the image's Python.
"""

import os
import re
import shutil
import struct
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
    """{library: [paths that need it]}, as ldd resolves it."""
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


def dynamic_entries(path):
    """(needed sonames, search dirs of RPATH/RUNPATH) of an ELF file; None if it is not one."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        (phoff,) = struct.unpack_from(order + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
        phdr, dyn = order + "IIQQQQQQ", order + "qQ"
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
        phdr, dyn = order + "IIIIIIII", order + "iI"
    loads, dynamic = [], None
    for index in range(phnum):
        fields = struct.unpack_from(phdr, data, phoff + index * phentsize)
        if wide:
            kind, offset, vaddr, filesz = fields[0], fields[2], fields[3], fields[5]
        else:
            kind, offset, vaddr, filesz = fields[0], fields[1], fields[2], fields[4]
        if kind == 1:  # PT_LOAD
            loads.append((vaddr, offset, filesz))
        elif kind == 2:  # PT_DYNAMIC
            dynamic = (offset, filesz)
    if dynamic is None:
        return [], []
    entries, size = [], struct.calcsize(dyn)
    for position in range(dynamic[0], dynamic[0] + dynamic[1], size):
        tag, value = struct.unpack_from(dyn, data, position)
        if tag == 0:
            break
        entries.append((tag, value))
    strtab = next((v for t, v in entries if t == 5), None)  # DT_STRTAB, a virtual address
    base = next((o + strtab - a for a, o, n in loads if a <= (strtab or -1) < a + n), None)
    if base is None:
        return None

    def text(offset):
        end = data.index(b"\0", base + offset)
        return data[base + offset : end].decode("utf-8", "replace")

    needed = [text(v) for t, v in entries if t == 1]  # DT_NEEDED
    origin = os.path.dirname(path)
    dirs = []
    for tag, value in entries:
        if tag in (15, 29):  # DT_RPATH, DT_RUNPATH
            for item in text(value).split(":"):
                dirs.append(item.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
    return needed, dirs


def loader_cache():
    """Sonames the dynamic loader's cache knows (`ldconfig -p`); None when it cannot be read."""
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            done = subprocess.run(
                [ldconfig, "-p"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                universal_newlines=True,
            )
        except OSError:
            continue
        if done.returncode == 0:
            return {line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()}
    return None


def suspects(paths, provided):
    """The objects with a needed library that no quick look resolves (ldd decides those)."""
    cache = loader_cache()
    if cache is None:
        return list(paths)
    extra = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    found = []
    for path in paths:
        entries = dynamic_entries(path)
        if entries is None:
            found.append(path)
            continue
        needed, dirs = entries
        for library in needed:
            if library in cache or library in provided or RUN_TIME_PROVIDED.match(library):
                continue
            if "/" in library or any(
                os.path.exists(os.path.join(d, library)) for d in dirs + extra
            ):
                continue
            found.append(path)
            break
    return found


def check(roots):
    """Problems, one line per missing library; empty when every library resolves."""
    ldd = shutil.which("ldd")
    if not ldd:
        print(
            "mlflow-steps: no ldd in the image; shared libraries were not checked", file=sys.stderr
        )
        return []
    paths = shared_objects(roots)
    provided = {os.path.basename(p) for p in paths}
    checked = suspects(paths, provided)
    batches = [checked[i : i + BATCH] for i in range(0, len(checked), BATCH)]
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
