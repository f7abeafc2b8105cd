"""Text from TensorFlow Datasets, and a TFDS builder for Penn Treebank.

`load_tfds_corpus` reads any TFDS text dataset as a `Corpus`. Importing
this module registers `ptb_mikolov`, Penn Treebank in Mikolov's split
(`load_tfds_corpus` and `--set corpus=tfds:ptb_mikolov` do it for you):

```python
import tensorflow_datasets as tfds
import keras_lstm_scratch.data.tfds  # noqa: F401 (registers the builder)

train = tfds.load("ptb_mikolov", split="train")
```

Each example is one sentence: `{"text": "the words of one line"}`. As
for any TFDS dataset with manual files, `ptb.train.txt`, `ptb.valid.txt`
and `ptb.test.txt` placed in the manual directory (`DATA_DIR/downloads/
manual/` by default, or `DownloadConfig(manual_dir=...)`) are used as they
are; otherwise they are downloaded from the book's location. Either way
each file is checked against its known SHA-256 before it is read.
"""

import dataclasses
import os

import tensorflow_datasets as tfds

from keras_lstm_scratch.data.prepared_corpus import prepare_corpus
from keras_lstm_scratch.data.ptb import (
    PTB_FILES,
    PTB_SHA256,
    PTB_URL,
    verify_ptb_file,
)
from keras_lstm_scratch.data.text_chunks import CHUNK_BYTES, TextChunk
from keras_lstm_scratch.data.tokenization import WORD_TOKENS
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError

TFDS_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


def load_tfds_corpus(
    name,
    text_key="text",
    max_vocab_size=10000,
    data_dir=None,
    split_names=None,
    download=True,
    tokenization=WORD_TOKENS,
    verbose=0,
    **reading,
):
    """Loads any TensorFlow Datasets text dataset as a corpus.

    Every example's `text_key` field is split into lines at `\\n` and into
    tokens (`tokenization`); each line ends with `<eos>`, as for text
    files. The text streams through the preparation of
    `prepared_corpus.py`, so the corpus is memory-mapped ids, cached under
    the dataset's full name (name, config, version), the splits and the
    text feature. `ptb_mikolov`, this module's Penn Treebank builder, is
    always there.

    Args:
        name: TFDS dataset name, e.g. `"tiny_shakespeare"` or `"ptb_mikolov"`.
        text_key: Name of the string feature holding the text.
        max_vocab_size: Vocabulary cap, built from the training split.
        data_dir: TFDS data directory.
        split_names: Optional `{split: tfds_split}`; default
            `train`, `validation`, `test`.
        download: Passed to `tfds.load`.
        tokenization: A `Tokenization`, words by default.
        verbose: 1: a progress bar while the text is prepared.
        **reading: `base_vocabulary` and `add_new_tokens` of
            `prepare_corpus` (fine-tuning).

    Returns:
        A `Corpus`.

    Raises:
        MissingInputError: for a dataset name TFDS does not know.
        InvalidInputError: for a missing text feature or an empty split.
    """
    split_names = split_names or TFDS_SPLITS
    datasets, full_name = {}, None
    for split, tfds_split in split_names.items():
        datasets[split], info = load_tfds_split(
            name, tfds_split, data_dir, download
        )
        full_name = info.full_name
    source = TfdsSource(name, full_name, dict(split_names), text_key, datasets)
    return prepare_corpus(
        source, tokenization, max_vocab_size, verbose=verbose, **reading
    )


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """The text of a TFDS dataset's splits, for `prepare_corpus`.

    Args:
        name: The dataset's name.
        full_name: TFDS's `name/config/version`: a version's data never
            changes, so it keys the prepared ids with the splits and the
            text feature.
        split_names: `{split: tfds_split}`.
        text_key: The string feature holding the text.
        datasets: `{split: tf.data.Dataset}` of the examples.
    """

    name: str
    full_name: str
    split_names: dict
    text_key: str
    datasets: dict
    total_bytes = None  # unknown before the text is read

    @property
    def description(self):
        return f"TFDS {self.full_name}"

    def split_files(self):
        return {
            split: [f"TFDS {self.name} split {tfds_split!r}"]
            for split, tfds_split in self.split_names.items()
        }

    def update_digest(self, digest):
        key = (self.full_name, sorted(self.split_names.items()), self.text_key)
        digest.update(repr(key).encode())

    def chunks(self):
        """The examples' text as `TextChunk`s of about `CHUNK_BYTES`."""
        for split, dataset in self.datasets.items():
            texts, size = [], 0
            for example in tfds.as_numpy(dataset):
                texts.append(self.example_text(example, split))
                size += len(example[self.text_key])  # bytes, as UTF-8
                if size >= CHUNK_BYTES:
                    yield TextChunk(split, "\n".join(texts) + "\n", size)
                    texts, size = [], 0
            if texts:
                yield TextChunk(split, "\n".join(texts) + "\n", size)

    def example_text(self, example, split):
        if self.text_key not in example:
            raise InvalidInputError(
                f"TFDS {self.name} split {self.split_names[split]!r} has no "
                f"feature {self.text_key!r}; its features are "
                f"{sorted(example)}. Pass text_key=..."
            )
        return example[self.text_key].decode("utf-8")


def load_tfds_split(name, tfds_split, data_dir, download):
    """One split of a TFDS dataset and the dataset's info, or
    `MissingInputError` for a bad name."""
    try:
        return tfds.load(
            name,
            split=tfds_split,
            data_dir=data_dir,
            download=download,
            with_info=True,
        )
    except tfds.core.DatasetNotFoundError:
        raise MissingInputError(
            f"TFDS has no dataset {name!r}; tfds.list_builders() names "
            "those it has."
        ) from None


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
