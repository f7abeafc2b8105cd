"""The training application: presets, the run, its CLIs, logs and plots.

The tools run as `python -m training.NAME`. While Python locates such a
module it imports this package with `sys.argv[0] == "-m"` (documented for
`-m`), and only then does TensorFlow start quietly (`cli.py`): importing
the package from a program or a notebook changes nothing.
"""

import sys

from training.cli import quiet_tensorflow_start

if sys.argv[:1] == ["-m"]:
    quiet_tensorflow_start()
