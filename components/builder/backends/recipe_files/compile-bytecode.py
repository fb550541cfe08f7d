"""mlflow-steps: compile an environment's Python files to bytecode, on every core.

Usage: python compile-bytecode.py [--root ROOT] [--stdin] [--emit] DIR...
(Python 3.7+; stdlib only)

With --root, each DIR is a path inside the tree staged at ROOT (an image's root on the
builder's disk): files are read under ROOT, and their code objects are named by the path
inside the image, as if compiled there.

With --stdin, the files are not looked for under DIR but read from standard input as they
are written (the builder streams each wheel's files once it is unpacked): NUL-terminated
paths (inside the image with --root), an empty one ending a group that is compiled at once.
A path is compiled when it is one the search under DIR would find (`wanted`), and once.

With --emit, nothing is written: each .pyc goes to standard output as a record, its path
inside the image, NUL, its length in decimal, NUL, its bytes (the builder writes it: an
interpreter it does not trust may read the tree, never write it), in one process.

Each .py under DIR gets an unchecked-hash .pyc (PEP 552): reproducible (no timestamp inside),
and an import neither stats nor reads the source. Packages' own test folders (`tests`, `test`
below a top-level package) are kept but not compiled. A file that does not compile is left as
source, as pip leaves it.

What `python -m compileall -j 0 --invalidation-mode unchecked-hash` does, faster on a tree
that nothing else reads while it is built (an image layer, a new venv): files go to the
workers in batches rather than one by one, each __pycache__ is made once, and each .pyc is
written in place rather than through a temporary file and a rename (file creation is most of
the cost beside compile() itself on overlay storage).
"""

import importlib.util
import marshal
import os
import sys
import time

SKIPPED_FOLDERS = ("tests", "test")
UNCHECKED_HASH = (1).to_bytes(4, "little")  # PEP 552 flags: hash-based, not checked
BATCH = 32
EMIT = []  # type: ignore[var-annotated]  # with --emit: the binary stream the records go to


def sources(roots):
    """Every .py under `roots`, each once, sorted (so a batch shares its folders)."""
    found = set()
    for root in roots:
        root = os.path.abspath(root)
        for folder, subfolders, files in os.walk(root):
            inside_package = folder != root
            subfolders[:] = [
                name
                for name in subfolders
                if name != "__pycache__" and not (inside_package and name in SKIPPED_FOLDERS)
            ]
            found.update(os.path.join(folder, name) for name in files if name.endswith(".py"))
    return sorted(found)


def wanted(path, roots):
    """Whether `sources(roots)` would list `path` (an absolute path): a .py file under a
    root, in no __pycache__ folder, and in no `tests`/`test` folder below a top-level one."""
    if not path.endswith(".py"):
        return False
    for root in roots:
        relative = os.path.relpath(path, root)
        if relative == os.curdir or relative.startswith(os.pardir + os.sep):
            continue
        folders = relative.split(os.sep)[:-1]
        if "__pycache__" in folders or any(name in SKIPPED_FOLDERS for name in folders[1:]):
            continue
        return True
    return False


def streamed(stream, roots, root):
    """The groups of paths read from `stream` (see the module doc), each sorted, each path
    once, the unwanted ones left out."""
    seen = set()
    group = []
    for record in records(stream):
        if not record:
            if group:
                yield sorted(group)
            group = []
            continue
        path = os.fsdecode(record)
        path = root + "/" + path.lstrip("/") if root else os.path.abspath(path)
        if path not in seen and wanted(path, roots):
            seen.add(path)
            group.append(path)
    if group:
        yield sorted(group)


def records(stream):
    """NUL-terminated records of a binary `stream`, as they arrive."""
    pending = b""
    while True:
        chunk = stream.read1(1 << 16) if hasattr(stream, "read1") else stream.read(1 << 16)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\0")
        for record in complete:
            yield record
    if pending:
        yield pending


def settle_interning():
    """Intern the strings CPython keeps one object of (the empty string, every one-character
    latin-1 string). Whether a string is interned when a file is compiled changes the .pyc's
    bytes (marshal writes the flag; the compiler merges equal constants differently), and
    whether these are depends on what the process did before (a module loaded): so that a
    file's .pyc does not depend on which files the same worker compiled earlier."""
    sys.intern("")
    for code in range(256):
        sys.intern(chr(code))


def compile_batch(batch):
    """Compile `batch` ((root, paths)); returns how many were left as source."""
    settle_interning()
    root, paths = batch
    failed = 0
    made = set()
    for path in paths:
        try:
            with open(path, "rb") as handle:
                source = handle.read()
            code = compile(source, path[len(root) :], "exec", dont_inherit=True)
        except Exception:  # SyntaxError, ValueError (NUL bytes), unreadable: keep the source
            failed += 1
            continue
        target = importlib.util.cache_from_source(path)
        folder = os.path.dirname(target)
        if folder not in made and not EMIT:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        data = importlib.util.MAGIC_NUMBER + UNCHECKED_HASH + importlib.util.source_hash(source)
        data += marshal.dumps(code)
        if EMIT:
            name = os.fsencode(target[len(root) :])
            EMIT[0].write(name + b"\0" + str(len(data)).encode() + b"\0" + data)
            continue
        with open(target, "wb") as handle:
            handle.write(data)
        # The next file compiles with none of this one's strings alive (interned ones among
        # them: which strings are interned changes how a file's equal constants are merged).
        del code
    return failed


def worker_pool():
    """One process per core, or None where this Python has no working multiprocessing (or
    the records go to standard output)."""
    if EMIT:
        return None
    try:
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(os.cpu_count() or 1)
    except (ImportError, NotImplementedError, OSError):
        return None


def batches_of(paths, root):
    return [(root, paths[start : start + BATCH]) for start in range(0, len(paths), BATCH)]


def compile_all(paths, root=""):
    batches = batches_of(paths, root)
    pool = worker_pool()
    if pool is None:
        return sum(compile_batch(batch) for batch in batches)
    with pool:  # an error inside a worker (a full disk) stops the build; it is not retried
        return sum(pool.map(compile_batch, batches))


def compile_groups(groups, root=""):
    """Compile each group of paths as it comes; returns (files, left as source)."""
    pool = worker_pool()
    count = 0
    results = []
    with pool if pool is not None else _nothing():
        for group in groups:
            count += len(group)
            for batch in batches_of(group, root):
                if pool is None:
                    results.append(compile_batch(batch))
                else:
                    results.append(pool.submit(compile_batch, batch))
            if EMIT:
                EMIT[0].flush()
        failed = sum(r if isinstance(r, int) else r.result() for r in results)
    return count, failed


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv):
    start = time.time()
    root = ""
    if argv[:1] == ["--root"]:
        root = os.path.abspath(argv[1])
        argv = argv[2:]
    stream = argv[:1] == ["--stdin"]
    if stream:
        argv = argv[1:]
    if argv[:1] == ["--emit"]:
        EMIT.append(sys.stdout.buffer)
        argv = argv[1:]
    if root:
        argv = [root + "/" + folder.lstrip("/") for folder in argv]
    if stream:
        roots = [os.path.abspath(folder) for folder in argv]
        count, failed = compile_groups(streamed(sys.stdin.buffer, roots, root), root)
    else:
        paths = sources(argv)
        count, failed = len(paths), compile_all(paths, root)
    if EMIT:
        EMIT[0].flush()
    print(
        "mlflow-steps: bytecode for {} files ({} left as source) in {:.1f} s".format(
            count - failed, failed, time.time() - start
        ),
        file=sys.stderr,  # a log line: the caller's stdout carries outputs only
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
