"""An offline demo: a generated text-classification dataset, a tiny BERT, entropy vs random.

Nothing is downloaded: the dataset is generated from a seed, the WordPiece tokenizer is
trained on it on the fly, and the model is a 2-layer BERT built from a config.

The generated task has five topics with unequal frequencies (the rarest is 6% of the
data). Most sentences carry one or two words of their topic among neutral filler; about a
fifth mix words of two topics and take the label of either, so some examples are
genuinely ambiguous, which is what uncertainty sampling should find.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "build_tiny_bert",
    "make_demo_dataset",
    "make_multilabel_dataset",
    "make_ner_dataset",
    "run_demo",
    "train_wordpiece_tokenizer",
]

TOPICS: dict[str, list[str]] = {
    "sports": ["match", "goal", "striker", "coach", "league", "season", "referee", "tennis", "stadium", "trophy", "sprint", "keeper"],
    "finance": ["stock", "market", "shares", "profit", "bank", "investor", "bond", "inflation", "dividend", "currency", "trader", "loan"],
    "science": ["atom", "molecule", "galaxy", "telescope", "enzyme", "genome", "physics", "laboratory", "quantum", "fossil", "neuron", "orbit"],
    "politics": ["election", "senate", "minister", "parliament", "vote", "policy", "campaign", "governor", "treaty", "cabinet", "reform", "ballot"],
    "cooking": ["recipe", "oven", "garlic", "pastry", "simmer", "flavour", "noodle", "spice", "dough", "roast", "sauce", "bakery"],
}
PRIORS = np.array([0.34, 0.27, 0.20, 0.13, 0.06])
FILLER = (
    ["the", "a", "an", "of", "to", "in", "on", "for", "with", "about", "after", "before", "today", "yesterday", "new", "old", "many", "some", "people", "report", "says", "said", "week", "year", "city", "country", "local", "world", "big", "small", "first", "last", "more", "less", "very", "quite", "really", "group", "team", "company", "study", "plan", "news", "story", "event", "time", "during", "around", "over", "under", "while", "because", "although", "still", "again", "only", "just", "also"]
)


def make_demo_dataset(
    num_train: int = 2000, num_test: int = 600, seed: int = 0, ambiguity: float = 0.2
) -> Any:
    """A seeded ``DatasetDict`` with ``train`` and ``test`` splits (``text``, ``label``)."""
    import datasets

    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    num_classes = len(names)

    def sample(n: int) -> dict[str, list]:
        labels = rng.choice(num_classes, size=n, p=PRIORS)
        texts = []
        for y in labels:
            length = int(rng.integers(6, 16))
            words = list(rng.choice(FILLER, size=length))
            topic_words = list(rng.choice(TOPICS[names[y]], size=int(rng.integers(1, 3))))
            if rng.random() < ambiguity:
                # mix in the same number of words of another topic: truly ambiguous
                other = int(rng.choice([c for c in range(num_classes) if c != y]))
                topic_words = topic_words[:1] + list(rng.choice(TOPICS[names[other]], size=1))
            for w in topic_words:
                words.insert(int(rng.integers(0, len(words) + 1)), w)
            texts.append(" ".join(words))
        return {"text": texts, "label": labels.tolist()}

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )

    def info() -> Any:  # named: cards say which data the metrics were measured on
        return datasets.DatasetInfo(
            dataset_name="energizer_hf_demo", description="energizer_hf.demo.make_demo_dataset", features=features
        )

    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(sample(num_train), features=features, info=info()),
            "test": datasets.Dataset.from_dict(sample(num_test), features=features, info=info()),
        }
    )


ENTITIES: dict[str, list[list[str]]] = {
    "PER": [["anna"], ["boris", "kowal"], ["chen", "li"], ["dara"], ["emil", "sand"], ["fatima"], ["gustav", "berg"],
            ["hana", "sato"], ["ivan"], ["julia", "moreno"]],
    "LOC": [["paris"], ["new", "york"], ["lagos"], ["rio", "de", "janeiro"], ["oslo"], ["cape", "town"], ["lima"],
            ["hanoi"], ["buenos", "aires"], ["perth"]],
    "ORG": [["acme", "corp"], ["unicef"], ["red", "cross"], ["nasa"], ["globex"], ["the", "bank", "of", "oslo"],
            ["fifa"], ["initech"], ["world", "health", "organization"], ["umbrella", "inc"]],
}
NER_TAGS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def make_ner_dataset(num_train: int = 1000, num_test: int = 300, seed: int = 0) -> Any:
    """A seeded named-entity ``DatasetDict`` (``tokens`` + ``ner_tags`` as
    ``Sequence(ClassLabel)`` in BIO form, types PER / LOC / ORG) with ``train`` and ``test``.

    Sentences are filler words with zero to three entities from small name lists; some
    names are ambiguous on purpose ("oslo" is a place, and part of an organisation).

    >>> ds = make_ner_dataset(4, 2, seed=0)
    >>> ds["train"].features["ner_tags"].feature.names[:3]
    ['O', 'B-LOC', 'I-LOC']
    """
    import datasets

    rng = np.random.default_rng(seed)
    types = sorted(ENTITIES)

    def sample(n: int) -> dict[str, list]:
        tokens, tags = [], []
        for _ in range(n):
            words = [str(w) for w in rng.choice(FILLER, size=int(rng.integers(4, 12)))]
            labels = ["O"] * len(words)
            for _ in range(int(rng.choice(4, p=[0.25, 0.4, 0.25, 0.1]))):
                etype = types[int(rng.integers(len(types)))]
                name = ENTITIES[etype][int(rng.integers(len(ENTITIES[etype])))]
                at = int(rng.integers(0, len(words) + 1))
                words[at:at] = list(name)
                labels[at:at] = [f"B-{etype}"] + [f"I-{etype}"] * (len(name) - 1)
            tokens.append(words)
            tags.append([NER_TAGS.index(t) for t in labels])
        return {"tokens": tokens, "ner_tags": tags}

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NER_TAGS)),
        }
    )
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(sample(num_train), features=features),
            "test": datasets.Dataset.from_dict(sample(num_test), features=features),
        }
    )


def make_multilabel_dataset(num_train: int = 1000, num_test: int = 300, seed: int = 0) -> Any:
    """A seeded multi-label ``DatasetDict``: texts mixing one to three of the demo topics,
    ``labels`` a ``Sequence(ClassLabel)`` of the topics present.

    >>> ds = make_multilabel_dataset(3, 1, seed=0)
    >>> ds["train"].features["labels"].feature.names[0]
    'sports'
    """
    import datasets

    rng = np.random.default_rng(seed)
    names = list(TOPICS)

    def sample(n: int) -> dict[str, list]:
        texts, labels = [], []
        for _ in range(n):
            k = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
            chosen = sorted(rng.choice(len(names), size=k, replace=False, p=PRIORS).tolist())
            words = [str(w) for w in rng.choice(FILLER, size=int(rng.integers(5, 12)))]
            for c in chosen:
                for w in rng.choice(TOPICS[names[c]], size=int(rng.integers(1, 3))):
                    words.insert(int(rng.integers(0, len(words) + 1)), str(w))
            texts.append(" ".join(words))
            labels.append(chosen)
        return {"text": texts, "labels": labels}

    features = datasets.Features(
        {"text": datasets.Value("string"), "labels": datasets.Sequence(datasets.ClassLabel(names=names))}
    )
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(sample(num_train), features=features),
            "test": datasets.Dataset.from_dict(sample(num_test), features=features),
        }
    )


def train_wordpiece_tokenizer(texts: list[str], vocab_size: int = 400) -> Any:
    """Learn a BERT-style WordPiece tokenizer from ``texts`` and wrap it for transformers.

    The vocabulary is learned deterministically: every character (and its ``##``
    continuation) so that any word can be spelled, then whole words by decreasing
    frequency (ties by spelling) up to ``vocab_size``. ``tokenizers``' own
    ``WordPieceTrainer`` breaks frequency ties in a hash-dependent order, so two processes
    would learn different vocabularies and a resumed or repeated run would not reproduce.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in counts for c in w})
    vocab = special + chars + [f"##{c}" for c in chars]
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1]
    vocab += words[: max(vocab_size - len(vocab), 0)]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def build_tiny_bert(vocab_size: int, hidden: int = 64, layers: int = 2) -> Any:
    """A small ``BertConfig`` (the classification head is added with the label count)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=64,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


DEMO_TASKS: dict[str, dict[str, Any]] = {
    "text_classification": {"strategies": ("entropy", "random"), "metric": "test/accuracy",
                            "columns": ["test/accuracy", "test/f1_macro"]},
    "ner": {"strategies": ("token_entropy", "random"), "metric": "test/entity_f1",
            "columns": ["num_labelled_tokens", "test/entity_f1", "test/token_accuracy"]},
    "multi_label": {"strategies": ("binary_entropy", "random"), "metric": "test/f1_micro",
                    "columns": ["test/f1_micro", "test/f1_macro", "test/subset_accuracy"]},
}


def run_demo(
    out_dir: str | Path = "energizer_demo",
    strategies: tuple[str, ...] | None = None,
    rounds: int = 6,
    query_size: int = 20,
    initial_size: int = 20,
    seed: int = 0,
    progress: bool | None = None,
    echo: Any = print,
    task: str = "text_classification",
) -> dict[str, Any]:
    """Run each strategy on the demo data, print the learning curves and save a plot.

    ``task``: ``text_classification`` (topics), ``ner`` (generated sentences with PER / LOC
    / ORG entities, token classification) or ``multi_label`` (texts mixing topics).
    Strategies default to the task's uncertainty strategy and random.

    Returns a dict with the results per strategy and the paths written.
    """
    task = {"token_classification": "ner", "multilabel": "multi_label", "classification": "text_classification"}.get(task, task)
    if task not in DEMO_TASKS:
        from energizer_hf.errors import UnknownTaskError

        raise UnknownTaskError(f"The demo has the tasks {', '.join(DEMO_TASKS)}; got {task!r}.")
    spec = DEMO_TASKS[task]
    strategies = tuple(strategies or spec["strategies"])
    import torch

    from energizer_hf.learner import ActiveLearner
    from energizer_hf.results import plot_learning_curves
    from energizer_hf.run import RunDir

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    extra: dict[str, Any] = {}
    if task == "ner":
        data = make_ner_dataset(seed=seed)
        tokenizer = train_wordpiece_tokenizer([" ".join(t) for t in data["train"]["tokens"][:]])
        extra = {"initial_strategy": "random"}
    elif task == "multi_label":
        data = make_multilabel_dataset(seed=seed)
        tokenizer = train_wordpiece_tokenizer(data["train"]["text"][:])
        extra = {"label_column": "labels"}
    else:
        data = make_demo_dataset(seed=seed)
        tokenizer = train_wordpiece_tokenizer(data["train"]["text"][:])
    config = build_tiny_bert(len(tokenizer))
    results = {}
    for name in strategies:
        learner = ActiveLearner(
            dataset=data,
            model=config,
            tokenizer=tokenizer,
            strategy=name,
            query_size=query_size,
            initial_size=initial_size,
            rounds=rounds,
            max_epochs=20,
            min_steps=0,
            batch_size=16,
            eval_batch_size=256,
            learning_rate=1e-3,
            warmup_ratio=0.1,
            max_length=32,
            seed=seed,
            run_dir=str(out_dir / (f"run-{name}" if task == "text_classification" else f"run-{task}-{name}")),
            progress=progress,
            **extra,
        )
        results[name] = learner.run()
    echo("")
    for name, res in results.items():
        echo(f"== {name}")
        echo(res.to_table(["round", "num_labelled", *spec["columns"], "time_fit", "time_query"]))
        echo("")
    metric = spec["metric"]
    echo(f"Area under the learning curve ({metric}):")
    for name, res in results.items():
        echo(f"  {name:>10}: {res.area_under_curve(metric):.4f}   final: {res[-1][metric]:.4f}")
    suffix = "" if task == "text_classification" else f"_{task}"
    plot = plot_learning_curves(
        results, out_dir / f"learning_curves{suffix}.png", metric=metric, title=f"energizer_hf demo ({task})"
    )
    written = [plot] + [
        RunDir(out_dir / (f"run-{n}" if task == "text_classification" else f"run-{task}-{n}")).rounds for n in results
    ]
    echo("")
    echo("Files written:")
    for p in written:
        echo(f"  {p}")
    echo(f"Done in {time.perf_counter() - start:.1f} s.")
    return {"results": results, "plot": plot, "files": written}
