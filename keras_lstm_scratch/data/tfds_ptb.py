"""A TensorFlow Datasets builder for Penn Treebank (Mikolov's split).

Importing this module registers `ptb_mikolov` (`load_tfds_corpus` and
`--set corpus=tfds:ptb_mikolov` do it for you):

```python
import tensorflow_datasets as tfds
import keras_lstm_scratch.data.tfds_ptb  # noqa: F401 (registers the builder)

train = tfds.load("ptb_mikolov", split="train")
```

Each example is one sentence: `{"text": "the words of one line"}`. As
for any TFDS dataset with manual files, `ptb.train.txt`, `ptb.valid.txt`
and `ptb.test.txt` placed in the manual directory (`DATA_DIR/downloads/
manual/` by default, or `DownloadConfig(manual_dir=...)`) are used as they
are; otherwise they are downloaded from the book's location. Either way
each file is checked against its known SHA-256 before it is read.
"""

import os

import tensorflow_datasets as tfds

from keras_lstm_scratch.data.ptb import (
    PTB_FILES,
    PTB_SHA256,
    PTB_URL,
    verify_ptb_file,
)

TFDS_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


class PtbMikolov(tfds.core.GeneratorBasedBuilder):
    """Penn Treebank, Mikolov's 10k-word language-modelling split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: put ptb.train.txt, ptb.valid.txt and ptb.test.txt in the "
        "manual directory to skip the download."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            description="Penn Treebank, Mikolov's 10k-word split "
            "(one sentence per example).",
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            homepage="https://www.fit.vutbr.cz/~imikolov/rnnlm/",
            # A language model reads the text in order: keep line order.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        try:
            manual_dir = os.fspath(dl_manager.manual_dir)
        except AssertionError:  # TFDS's answer for a missing or empty folder
            manual_dir = None
        if manual_dir and all(
            os.path.isfile(os.path.join(manual_dir, name))
            for name in PTB_FILES.values()
        ):
            paths = {
                split: os.path.join(manual_dir, name)
                for split, name in PTB_FILES.items()
            }
        else:
            paths = dl_manager.download(
                {split: PTB_URL + name for split, name in PTB_FILES.items()}
            )
        for split, path in paths.items():
            verify_ptb_file(os.fspath(path), PTB_SHA256[PTB_FILES[split]])
        return {
            TFDS_SPLITS[split]: self._generate_examples(os.fspath(path))
            for split, path in paths.items()
        }

    def _generate_examples(self, path):
        with open(path, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                text = line.strip()
                if text:
                    yield index, {"text": text}
