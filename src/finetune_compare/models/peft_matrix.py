"""The compatibility matrix: every peft method type tried on an encoder classifier, through our own method path.

For each `peft.PeftType` and each architecture (a BERT: the embedded MiniLM; a RoBERTa at RoBERTa-base's width), it
checks what a comparison relies on: the method builds for sequence classification with the head trained in full;
one optimizer step changes trainable parameters and nothing else; our parameter accounting matches the parameters
that require gradients; the adapter saves and reloads to the same logits; and whether peft merges it into the base
(the same merge `export` uses), to the same logits. docs/methods.md's table is written from this
(`python -m finetune_compare.models.peft_matrix --write docs/methods.md`), and a test fails when the two disagree.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, ModelError
from ..methods.peft_types import REFUSED, peft_type_names
from .accounting import count_parameters
from .export import merge

TOLERANCE = 1e-4  # logits after reload or merge, fp32
HEAD = ["classifier"]


@dataclass
class Outcome:
    method: str
    architecture: str
    works: bool
    trainable: int | None = None
    trainable_base: int | None = None  # RoBERTa only: at RoBERTa-base's 12 layers (see `at_roberta_base`)
    mergeable: str | None = None  # "yes", or why not
    problem: str | None = None  # the first check that failed, and how


def _batch(vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab - 1, (4, 16), generator=g)
    mask = torch.ones_like(ids)
    mask[2:, 12:] = 0  # padding in half the batch
    return {"input_ids": ids, "attention_mask": mask}


def _logits(model, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch).logits.float()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def try_method(name: str, base: torch.nn.Module, architecture: str) -> Outcome:
    """Every check for one method on one base model (which is left untouched)."""
    from peft import PeftModel

    from ..config.method_section import MethodConfig
    from ..methods import get_method

    out = Outcome(name, architecture, works=False)
    if name in REFUSED:
        out.problem = f"refused: {REFUSED[name]}"
        return out
    batch = _batch(base.config.vocab_size)
    labels = torch.tensor([0, 1, 2, 0])
    try:
        torch.manual_seed(0)
        method = get_method(name)
        model = method.make_trainable(copy.deepcopy(base), MethodConfig(methods=["full", name]), HEAD)
    except (ConfigError, ModelError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        out.problem = f"build: {_first_line(exc)}"
        return out
    counts = count_parameters(model, HEAD)
    grad = {n: p for n, p in model.named_parameters() if p.requires_grad}
    by_grad = sum(p.numel() for n, p in grad.items() if ".original_module." not in n)
    out.trainable = int(counts["trainable"])
    if counts["trainable"] != by_grad or counts["trainable"] <= 0:
        out.problem = f"accounting: counted {counts['trainable']:,} trainable, {by_grad:,} require gradients"
        return out
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    try:
        model.train()
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        torch.optim.AdamW(grad.values(), lr=1e-2).step()
    except (ValueError, TypeError, RuntimeError, AttributeError, IndexError) as exc:
        out.problem = f"train step: {_first_line(exc)}"
        return out
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    frozen_changed = sorted(n for n in changed if n not in grad)
    if frozen_changed or not changed:
        out.problem = ("train step: frozen parameters changed: " + ", ".join(frozen_changed[:2]) if frozen_changed
                       else "train step: no parameter changed")
        return out
    reference = _logits(model, batch)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model.save_pretrained(tmp)
            reloaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp) if hasattr(model, "peft_config") else None
        except (ValueError, TypeError, RuntimeError, AttributeError, KeyError, OSError) as exc:
            out.problem = f"save and reload: {_first_line(exc)}"
            return out
    if reloaded is not None:
        gap = (_logits(reloaded, batch) - reference).abs().max().item()
        if gap > TOLERANCE:
            out.problem = f"save and reload: logits differ by {gap:.2g}"
            return out
    out.works = True
    config = next(iter(model.peft_config.values())) if hasattr(model, "peft_config") else None
    if config is not None and config.is_prompt_learning:
        out.mergeable = "no: a prompt method (learned virtual tokens are an input, not a change of weights)"
        return out
    merged, why_not = merge(model)
    if merged is None:
        out.mergeable = "no: " + why_not.split(" cannot be merged by peft ", 1)[-1].strip("()")
    else:
        gap = (_logits(merged, batch) - reference).abs().max().item()
        out.mergeable = "yes" if gap <= TOLERANCE else f"no: merged logits differ by {gap:.2g}"
    return out


ROBERTA = "RoBERTa (1 layer at base width, 768)"
BASE_LAYERS = 12


def _roberta(layers: int) -> torch.nn.Module:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    return RobertaForSequenceClassification(RobertaConfig(vocab_size=1000, num_hidden_layers=layers,
                                                          max_position_embeddings=66, num_labels=3, pad_token_id=1))


def at_roberta_base(name: str, one_layer: int) -> int | None:
    """Trainable parameters at RoBERTa-base's 12 layers (full vocabulary's embeddings aside, which only `full`
    trains), from 1 and 2 layers: a method's count is a constant (head, shared banks) plus the same count per layer,
    so count(12) = count(1) + 11 x (count(2) - count(1)). tests hold it against LoRA's and VeRA's closed forms."""
    from ..config.method_section import MethodConfig
    from ..methods import get_method

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = get_method(name).make_trainable(_roberta(2), MethodConfig(methods=["full", name]), HEAD)
    except (ConfigError, ModelError, ValueError, TypeError, RuntimeError, AttributeError):
        return None
    two = int(count_parameters(model, HEAD)["trainable"])
    return one_layer + (BASE_LAYERS - 1) * (two - one_layer)


def bases() -> dict[str, torch.nn.Module]:
    """The two architectures: the embedded MiniLM (BERT, 384 wide, 6 layers) with a new 3-way head, and a
    1-layer random RoBERTa at RoBERTa-base's width (768, 12 heads, 3072 feed-forward), small vocabulary."""
    from transformers import AutoModelForSequenceClassification

    from .resolve import embedded_minilm_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        bert = AutoModelForSequenceClassification.from_pretrained(str(embedded_minilm_path()), num_labels=3)
        roberta = _roberta(1)
    return {"BERT (MiniLM-L6, 384 wide)": bert, ROBERTA: roberta}


def matrix(names: list[str] | None = None) -> list[Outcome]:
    torch.set_num_threads(1)
    out = []
    for architecture, base in bases().items():
        for name in names or peft_type_names():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome = try_method(name, base, architecture)
            if architecture == ROBERTA and outcome.works and name != "full":
                outcome.trainable_base = at_roberta_base(name, outcome.trainable)
            out.append(outcome)
    return out


def table(outcomes: list[Outcome]) -> str:
    """The Markdown table of docs/methods.md: one row per peft type, one column per architecture."""
    archs = list(dict.fromkeys(o.architecture for o in outcomes))
    rows = {}
    for o in outcomes:
        rows.setdefault(o.method, {})[o.architecture] = o
    lines = ["| method | " + " | ".join(archs) + " | trainable on RoBERTa-base (12 layers, 3-way head) | mergeable |",
             "|---|" + "---|" * len(archs) + "---|---|"]
    for name, per in rows.items():
        if all(o.problem and o.problem.startswith("refused: ") for o in per.values()):
            reason = next(iter(per.values())).problem.removeprefix("refused: ").replace("|", "/")
            lines.append(f"| `{name}` | " + " | ".join(["refused"] * len(archs)) + f" | – | {reason} |")
            continue
        cells = []
        for a in archs:
            o = per[a]
            cells.append(f"works, {o.trainable:,} trainable" if o.works else f"no: {o.problem}".replace("|", "/"))
        merges = sorted({o.mergeable for o in per.values() if o.works})
        base = per.get(ROBERTA)
        at_base = f"{base.trainable_base:,}" if base is not None and base.trainable_base else "–"
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {at_base} | "
                     + ("; ".join(merges) if merges else "–").replace("|", "/") + " |")
    return "\n".join(lines)


BEGIN, END = "<!-- compatibility table: begin -->", "<!-- compatibility table: end -->"


def write_table(doc: Path, text: str) -> None:
    content = doc.read_text(encoding="utf-8")
    start, end = content.index(BEGIN) + len(BEGIN), content.index(END)
    doc.write_text(content[:start] + "\n" + text + "\n" + content[end:], encoding="utf-8")


def table_in(doc: Path) -> str:
    content = doc.read_text(encoding="utf-8")
    return content[content.index(BEGIN) + len(BEGIN):content.index(END)].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace the table between the markers in this Markdown file")
    parser.add_argument("--json", type=Path, help="also write every outcome as JSON")
    args = parser.parse_args(argv)
    outcomes = matrix()
    text = table(outcomes)
    if args.json:
        import json

        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")
    if args.write:
        write_table(args.write, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
