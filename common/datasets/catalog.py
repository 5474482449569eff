"""The table of datasets: which files each one has, their SHA-256, and where to get them.

Pure data and the errors every other module of the package raises; nothing here touches the disk,
so the hashes can be read (and reviewed) without the code that checks them.

`USER_DATASETS` are the datasets the registry cannot fetch nor pin: the user downloads them and
the registry finds them under the data root by their files' names and checks what it can without
a hash (every shard of the set present, each a parquet file of the expected columns;
common.datasets.verify.user_dataset_files). They stay out of `DATASETS`, so that `fetch` (all
datasets by default) and `check` never ask for them.
"""

from __future__ import annotations

from dataclasses import dataclass

FETCH_HINT = "make data (or: python -m compress.datasets fetch {name})"


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, relative to the dataset's folder."""

    path: str
    sha256: str
    # Where the file sits in the downloaded archive, when the download is an archive.
    member: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Dataset:
    """A dataset: a folder of files under the data root, and how to obtain them.

    `url` is either an archive (`archive` = "zip" or "tgz", files named by their `member`) or, when
    `archive` is None, a base address to which each file's `member` (or path) is appended.
    `alternatives` lists files that may stand in for the whole set (enwik8 may be the raw file or
    its zip); the dataset is present when all `files` are, or when one alternative is.
    """

    name: str
    folder: str
    files: tuple[DataFile, ...]
    url: str
    archive: str | None = None
    alternatives: tuple[DataFile, ...] = ()
    description: str = ""


_NAMES_SHA = {
    "Arabic": "6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc",
    "Chinese": "49263ef55a8cb1740e841d65cad8214b2f9b5b869bc534c811746422496fa91e",
    "Czech": "145bbbd6d0816578f03388e92c264d39ef1c60df920b081d371fa5c5cc055a8e",
    "Dutch": "924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3",
    "English": "9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2",
    "French": "81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95",
    "German": "7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db",
    "Greek": "3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6",
    "Irish": "cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058",
    "Italian": "f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4",
    "Japanese": "e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f",
    "Korean": "cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136",
    "Polish": "45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826",
    "Portuguese": "50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53",
    "Russian": "43b3e64ce351f77f1ac9e0cdf7566012d127f4371875fd25208845b5c9d6f7c3",
    "Scottish": "78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd",
    "Spanish": "1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7",
    "Vietnamese": "f3f9e4164ab47601178a6e45b216464a64122f49d05541f24bf18a757253281d",
}

_MULTI30K_SHA = {
    "train.lc.norm.tok.en": "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
    "train.lc.norm.tok.de": "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
    "val.lc.norm.tok.en": "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
    "val.lc.norm.tok.de": "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
    "test_2016_flickr.lc.norm.tok.en": "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
    "test_2016_flickr.lc.norm.tok.de": "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
}

ENWIK8_SHA256 = "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8"
ENWIK8_SIZE = 100_000_000
ENWIK8_ZIP_SIZE = 36_445_475

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="ptb_char",
            folder="ptb_char",
            description="Penn Treebank, character level (Mikolov; AWD-LSTM pennchar)",
            url="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
            archive="tgz",
            files=(
                DataFile(
                    "train.txt",
                    "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
                    "./simple-examples/data/ptb.char.train.txt",
                ),
                DataFile(
                    "valid.txt",
                    "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
                    "./simple-examples/data/ptb.char.valid.txt",
                ),
                DataFile(
                    "test.txt",
                    "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
                    "./simple-examples/data/ptb.char.test.txt",
                ),
            ),
        ),
        Dataset(
            name="ptb_word",
            folder="ptb_word",
            description="Penn Treebank, word level (Mikolov)",
            url="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
            archive="tgz",
            files=(
                DataFile(
                    "train.txt",
                    "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                    "./simple-examples/data/ptb.train.txt",
                ),
                DataFile(
                    "valid.txt",
                    "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                    "./simple-examples/data/ptb.valid.txt",
                ),
                DataFile(
                    "test.txt",
                    "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                    "./simple-examples/data/ptb.test.txt",
                ),
            ),
        ),
        Dataset(
            name="enwik8",
            folder="enwik8",
            description="First 10^8 bytes of the English Wikipedia dump (Hutter prize)",
            url="http://mattmahoney.net/dc/enwik8.zip",
            archive="zip",
            files=(DataFile("enwik8", ENWIK8_SHA256, "enwik8", ENWIK8_SIZE),),
            # The zip as downloaded may stand in for the raw file: its member is hashed instead.
            alternatives=(DataFile("enwik8.zip", ENWIK8_SHA256, "enwik8", ENWIK8_ZIP_SIZE),),
        ),
        Dataset(
            name="names",
            folder="names",
            description="Surnames of 18 languages (PyTorch char-RNN tutorial)",
            url="https://download.pytorch.org/tutorial/data.zip",
            archive="zip",
            files=tuple(
                DataFile(f"{lang}.txt", sha, f"data/names/{lang}.txt")
                for lang, sha in sorted(_NAMES_SHA.items())
            ),
        ),
        Dataset(
            name="cmn_eng",
            folder="cmn_eng",
            description="Tatoeba English-Mandarin pairs (manythings.org cmn.txt, 2022 release)",
            url="https://www.manythings.org/anki/cmn-eng.zip",
            archive="zip",
            files=(
                DataFile(
                    "cmn.txt",
                    "9da1af87e3e61650aa38595e60baef3a4e3a18ed239a7ef4a764c0a87c7ddeff",
                    "cmn.txt",
                ),
            ),
        ),
        Dataset(
            name="wmt_zh_en_valid",
            folder="wmt_zh_en_valid",
            description="WMT19 zh-en validation (newstest2018), HuggingFace parquet",
            url="https://huggingface.co/datasets/wmt/wmt19/resolve/main/zh-en/",
            files=(
                DataFile(
                    "validation-00000-of-00001.parquet",
                    "338679811a459e781d91b2b10af0f43922f8fd9e118086cf3377b249978e1c2b",
                ),
            ),
        ),
        Dataset(
            name="multi30k",
            folder="multi30k",
            description="Multi30k task 1, tokenized and lowercased, de-en",
            url="https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/tok/",
            files=tuple(DataFile(f, sha) for f, sha in _MULTI30K_SHA.items()),
        ),
    )
}


@dataclass(frozen=True)
class UserDataset:
    """A dataset the user supplies: shards named `<split>-NNNNN-of-MMMMM[-hash].parquet` in its
    folder under the data root, all MMMMM of them, each with `column` a struct of `fields`.

    No SHA-256 is pinned: the host rewrites these files (HuggingFace's parquet converter commits
    new files of the same rows, with new hashes), so a hash would refuse good copies. Presence of
    the whole set and each file's schema are checked instead."""

    name: str
    folder: str
    split: str  # the shards' name prefix: train-00000-of-00013.parquet
    column: str
    fields: tuple[str, ...]
    source: str  # where the files come from, for the message when they are missing
    description: str = ""


USER_DATASETS: dict[str, UserDataset] = {
    d.name: d
    for d in (
        UserDataset(
            name="wmt19_zh_en_train",
            folder="wmt19_zh_en_train",
            split="train",
            column="translation",
            fields=("en", "zh"),
            source="https://huggingface.co/datasets/wmt/wmt19/tree/main/zh-en",
            description="the WMT19 zh-en training data, HuggingFace parquet shards",
        ),
    )
}


@dataclass(frozen=True)
class UserTextDataset:
    """A published text dataset the user downloads and unpacks: the registry names its files and
    where they come from, but pins no SHA-256 (the archive is gigabytes, and no verified copy was
    at hand to hash), so each file named is checked for presence and size > 0 instead
    (common.datasets.verify.user_text_files). `folder` under the data root holds what `archive`
    unpacks to, its top folder `archive_root` renamed to `folder`."""

    name: str
    folder: str
    files: tuple[str, ...]  # relative to `folder`
    url: str  # the archive
    archive_root: str
    description: str = ""


# The 1B Word Benchmark (Chelba et al., 2013): 99 training shards (the hundredth, 00000, is
# heldout) and the heldout shards, of which 00000 is the published test set; ELMo's loader
# (elmo.data) validates on heldout 00001.
LM1B = UserTextDataset(
    name="lm1b",
    folder="lm1b",
    files=tuple(
        f"training-monolingual.tokenized.shuffled/news.en-{i:05d}-of-00100" for i in range(1, 100)
    )
    + tuple(
        f"heldout-monolingual.tokenized.shuffled/news.en.heldout-{i:05d}-of-00050" for i in (0, 1)
    ),
    url="http://www.statmt.org/lm-benchmark/"
    "1-billion-word-language-modeling-benchmark-r13output.tar.gz",
    archive_root="1-billion-word-language-modeling-benchmark-r13output",
    description="the One Billion Word Benchmark, tokenized text shards",
)


class DatasetError(ValueError):
    """A dataset problem a user can fix; its message is one line, fit to print as is."""


class DatasetMissingError(DatasetError):
    pass


class DatasetCorruptError(DatasetError):
    pass


class DownloadError(DatasetError):
    pass


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None
