"""The shipped CLIP tokenizer equals OpenAI CLIP's SimpleTokenizer construction."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import pytest
import regex

from core.diffusion.resources import CLIP_TOKENIZER, load_clip_tokenizer

WHEEL = Path("/tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl")


class ReferenceBPE:
    """An independent byte-pair encoder following OpenAI CLIP's simple_tokenizer.py."""

    PATTERN = regex.compile(
        r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
        r"[^\s\p{L}\p{N}]+",
        regex.IGNORECASE,
    )

    def __init__(self, folder: Path) -> None:
        self.encoder = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")[1:]
        merges = [tuple(line.split()) for line in lines if line]
        self.ranks = {merge: rank for rank, merge in enumerate(merges)}
        printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
        extra = [b for b in range(256) if b not in printable]
        self.byte_map = {b: chr(b) for b in printable}
        self.byte_map.update({b: chr(256 + i) for i, b in enumerate(extra)})

    @functools.cache  # noqa: B019  (test-only helper)
    def bpe(self, token: str) -> tuple[str, ...]:
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in itertools.pairwise(word)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return tuple(word)

    def encode(self, text: str) -> list[int]:
        text = " ".join(text.split()).strip().lower()
        ids = [49406]
        for token in self.PATTERN.findall(text):
            mapped = "".join(self.byte_map[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self.bpe(mapped))
        return [*ids, 49407]


PROMPTS = [
    "a photo of a cat",
    "An astronaut riding a horse on Mars, 4k, highly detailed!!",
    "portrait of a woman, (masterpiece:1.2), [blurry], trending on artstation",
    "naïve café — 東京 at night 🌃",
    "don't stop   believing; it's 3.14159",
]


def test_known_ids():
    tokenizer = load_clip_tokenizer()
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == 49408


@pytest.mark.parametrize("prompt", PROMPTS)
def test_matches_reference_bpe(prompt):
    reference = ReferenceBPE(CLIP_TOKENIZER)
    assert load_clip_tokenizer()(prompt)["input_ids"] == reference.encode(prompt)


def test_vocabulary_layout():
    vocab = json.loads((CLIP_TOKENIZER / "vocab.json").read_text(encoding="utf-8"))
    by_id = {i: token for token, i in vocab.items()}
    assert len(vocab) == 49408
    assert by_id[0] == "!" and by_id[256] == "!</w>"
    assert by_id[49406] == "<|startoftext|>" and by_id[49407] == "<|endoftext|>"
    merges = (CLIP_TOKENIZER / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version") and len(merges) == 1 + 49152 - 256 - 2
    assert by_id[512] == "".join(merges[1].split())


@pytest.mark.skipif(not WHEEL.is_file(), reason="open-clip-torch wheel not downloaded")
def test_script_reproduces_shipped_files(tmp_path):
    from tools.make_clip_tokenizer import write_tokenizer

    write_tokenizer(WHEEL, tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (CLIP_TOKENIZER / name).read_bytes()
