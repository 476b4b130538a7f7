"""The three sentiment sources, each in its native label scheme, and the one place where
native labels are mapped to our 3 classes {0 negative, 1 neutral, 2 positive}.

The mapping is written by *name* (native label name -> class name) and checked against
the names each backend reports, so a reordered or relabelled dataset fails loudly
instead of silently training on swapped labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..labels import CLASS_IDS, CLASS_NAMES  # noqa: F401  (re-exported: the data stage's view of the schema)


@dataclass(frozen=True)
class SourceSpec:
    name: str  # config name
    display: str  # name in tables and plots
    local_dir: str  # folder under data_dir
    hub_id: str
    hub_config: str | None
    native_labels: tuple[str, ...]  # native id -> native name
    name_to_class: dict  # native name -> our class name
    splits: tuple[str, ...]  # splits the source ships
    kind: str  # "review" | "sentence" | "tweet": selects the cleaning rules

    def to_class(self, native_label: int) -> int:
        return CLASS_IDS[self.name_to_class[self.native_labels[native_label]]]

    def scheme(self) -> str:
        return "{" + ", ".join(f"{i}: {n}" for i, n in enumerate(self.native_labels)) + "}"


def display_name(source: str) -> str:
    """A preset source's display name (IMDB, SST-5, TweetEval); your own data's groups as they are."""
    return SOURCES[source].display if source in SOURCES else source


SOURCES: dict[str, SourceSpec] = {
    "imdb": SourceSpec(
        name="imdb", display="IMDB", local_dir="imdb", hub_id="stanfordnlp/imdb", hub_config=None,
        native_labels=("neg", "pos"),
        name_to_class={"neg": "negative", "pos": "positive"},
        splits=("train", "test"), kind="review",
    ),
    "sst5": SourceSpec(
        name="sst5", display="SST-5", local_dir="sst5", hub_id="SetFit/sst5", hub_config=None,
        native_labels=("very negative", "negative", "neutral", "positive", "very positive"),
        name_to_class={
            "very negative": "negative", "negative": "negative", "neutral": "neutral",
            "positive": "positive", "very positive": "positive",
        },
        splits=("train", "validation", "test"), kind="sentence",
    ),
    "tweeteval": SourceSpec(
        name="tweeteval", display="TweetEval", local_dir="tweeteval_sentiment", hub_id="cardiffnlp/tweet_eval",
        hub_config="sentiment",
        native_labels=("negative", "neutral", "positive"),
        name_to_class={"negative": "negative", "neutral": "neutral", "positive": "positive"},
        splits=("train", "validation", "test"), kind="tweet",
    ),
}
