"""Generated values that forms and webhooks should survive: odd unicode, bytes that are not
UTF-8, huge texts, numbers written oddly."""

from __future__ import annotations

from hypothesis import strategies as st

ODD = [
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u200d",  # zero-width joiner
    "\u200b",  # zero-width space
    "\ufeff",  # byte order mark
    "e\u0301\u0301\u0301",  # combining accents
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family emoji joined
    "\x00",
    "\r\n",
    "\t",
    "İ",  # lower() makes it two characters
    "ß",
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "\uff11\uff12",  # full-width digits
    "%",
    "+",
    "&",
    "=",
    "#",
]

# Raw bytes, percent-encoded on the wire: encoded surrogates, overlongs, stray continuation
# bytes, a lone lead byte. The server keeps them as %XX text; the signature covers that.
BAD_BYTES = [b"\xed\xa0\x80", b"\xff", b"\xc3", b"\x80\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"]

piece = st.one_of(st.characters(codec="utf-8"), st.sampled_from(ODD))
odd_text = st.lists(piece, max_size=30).map("".join)
value = st.one_of(
    odd_text,
    st.just(""),
    st.binary(max_size=20),
    st.builds(
        lambda a, b, c: a.encode() + b + c.encode(), odd_text, st.sampled_from(BAD_BYTES), odd_text
    ),
)


class Long(str):
    """A long generated text that shows itself briefly in a failing example."""

    def __repr__(self) -> str:
        return f"Long({len(self):,} characters: {str.__repr__(self[:24])}...)"


def huge(min_size: int = 1601, max_size: int = 100_000):
    """A long text, cheaply: a generated piece repeated, or many distinct words."""
    repeated = st.builds(
        lambda piece, n: (piece * (n // len(piece) + 1))[:n],
        st.lists(piece, min_size=1, max_size=12).map("".join),
        st.integers(min_size, max_size),
    )
    words = st.builds(
        lambda n, base: " ".join(f"{chr(base + i % 2000)}{i:x}" for i in range(n // 6)),
        st.integers(min_size, max_size),
        st.sampled_from([0x61, 0x4E00, 0x0400, 0x0600]),
    )
    return st.one_of(repeated, words).map(Long)


numbers_oddly = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "",
            " 3 ",
            "+2",
            "-1",
            "0x10",
            "1e3",
            "3.0",
            "1_0",
            "٣",
            "\uff12",
            "NaN",
            "inf",
            "9" * 5000,
        ]
    ),
    odd_text,
)
