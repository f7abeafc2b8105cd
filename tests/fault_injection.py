"""Runs a command-line tool with a fault that begins at a chosen call.

    python -m tests.fault_injection FAULT TARGET CALL -- MODULE ARGS...

FAULT is one of:

- `disk-full:BYTES`: from then on no file of the process may grow past
  BYTES (`RLIMIT_FSIZE`): a write past it fails with `EFBIG`, half done, as
  on a full disk (Python ignores `SIGXFSZ`, so the write fails instead of
  killing the process).
- `read-only:FOLDER`: from then on every write under FOLDER fails with
  `EROFS`, as on a file system remounted read-only. Emulated at Python's
  file functions and h5py, so that it stops root too, whom permissions do
  not stop; TensorFlow's C++ writers (TensorBoard's event files) are not
  covered.

TARGET is `module:Class.method` (or `module:function`); the fault begins
at its CALL-th call and stays on. MODULE is the tool (`training.train`,
`training.export`), run through its `main` as `python -m MODULE` runs it:
its exit status and output are the tool's.
"""

import builtins
import errno
import functools
import importlib
import io
import os
import resource
import sys


def start_disk_full(limit):
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))


def start_read_only(folder):
    """Makes every later write under `folder` fail with `EROFS`."""
    folder = os.path.realpath(folder)

    def inside(path):
        if isinstance(path, int):
            return False
        path = os.path.realpath(os.fsdecode(os.fspath(path)))
        return path == folder or path.startswith(folder + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def guard(function, is_write, *positions):
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            if is_write(args, kwargs):
                for index in positions:
                    if index < len(args) and inside(args[index]):
                        refuse(args[index])
            return function(*args, **kwargs)

        return guarded

    def always(args, kwargs):
        return True

    def write_mode(args, kwargs):
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return any(flag in mode for flag in "wax+")

    def write_flags(args, kwargs):
        flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    opener = guard(io.open, write_mode, 0)
    builtins.open = io.open = opener
    os.open = guard(os.open, write_flags, 0)
    for name in ("replace", "rename"):
        setattr(os, name, guard(getattr(os, name), always, 0, 1))
    for name in ("remove", "unlink", "mkdir", "rmdir"):
        setattr(os, name, guard(getattr(os, name), always, 0))

    import h5py

    h5py_file = h5py.File

    class ReadOnlyFile(h5py_file):
        def __init__(self, name, mode="r", *args, **kwargs):
            if mode != "r" and inside(name):
                refuse(name)
            super().__init__(name, mode, *args, **kwargs)

    h5py.File = ReadOnlyFile


def inject(fault, target, call):
    """Wraps `target` so that `fault` starts at its `call`-th call."""
    kind, _, argument = fault.partition(":")
    start = {
        "disk-full": lambda: start_disk_full(int(argument)),
        "read-only": lambda: start_read_only(argument),
    }[kind]
    module_name, _, qualified = target.partition(":")
    owner = importlib.import_module(module_name)
    *path, name = qualified.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = []

    @functools.wraps(original)
    def faulty(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            start()
        return original(*args, **kwargs)

    setattr(owner, name, faulty)


def main(argv):
    fault, target, call, separator, module, *arguments = argv
    assert separator == "--", argv
    from training.cli import quiet_tensorflow_start

    quiet_tensorflow_start()  # as `python -m training.NAME` starts
    tool = importlib.import_module(module)
    inject(fault, target, int(call))
    return tool.main(arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
