"""Exact token counts with a Hugging Face ``tokenizer.json``, for the command line (not in the Lambda layer:
it needs the ``tokenizers`` package). The estimate used in Lambda is ``fmops.data.tokens.EstimateCounter``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmops.data.tokens import token_phrase


class HuggingFaceTokenizerCounter:
    """Exact counts with a Hugging Face ``tokenizer.json`` (needs the ``tokenizers`` package).

    Truncation and padding stored in the file are switched off: a count must not stop at, or be padded to, the
    tokenizer's ``max_length``. ``add_special_tokens`` (default ``True``) counts ``[CLS]``/``[SEP]``-style tokens,
    as the training container's ``tokenizer(texts, truncation=True, max_length=...)`` does.
    """

    def __init__(self, tokenizer: Any, *, add_special_tokens: bool = True) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._add_special_tokens = add_special_tokens

    @classmethod
    def from_file(cls, path: str | Path, *, add_special_tokens: bool = True) -> HuggingFaceTokenizerCounter:
        """Load ``path`` (a ``tokenizer.json``).

        Raises:
            FileNotFoundError: ``path`` is not a file.
            ImportError: the ``tokenizers`` package is not installed (it is not in the Lambda layer).
        """
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no tokenizer file at {file}")
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError(
                "exact token counts need the 'tokenizers' package (pip install tokenizers); "
                "it is not part of the Lambda layer, use EstimateCounter there"
            ) from exc
        return cls(Tokenizer.from_file(str(file)), add_special_tokens=add_special_tokens)

    @property
    def exact(self) -> bool:
        return True

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=self._add_special_tokens).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        """Counts of many texts in one (parallel) call."""
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=self._add_special_tokens)
        return [len(encoding.ids) for encoding in encodings]

    def describe(self, text: str) -> str:
        """``N tokens``."""
        return token_phrase(self.count(text), exact=True)
