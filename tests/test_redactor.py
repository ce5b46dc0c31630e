"""``rebalancer.logs.Redactor``: both ways of finding secrets (one alternation for a few, the prefix index for
hundreds of jobs' keys) redact exactly what a plain leftmost-longest scan written here redacts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.logs import REDACTED, Redactor, _written_forms
from tests.depth import examples

ALPHABET = 'ab1%\\"é/+ -'
secrets_ = st.text(ALPHABET, min_size=6, max_size=12)


def _reference(text: str, forms: set[str]) -> str:
    """Leftmost first; at one place the longest form; nothing shorter than 6 characters is a form."""
    out, i = [], 0
    ordered = sorted(forms, key=len, reverse=True)
    while i < len(text):
        found = next((f for f in ordered if text.startswith(f, i)), None)
        if found is None:
            out.append(text[i])
            i += 1
        else:
            out.append(REDACTED)
            i += len(found)
    return "".join(out)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(secrets_, min_size=1, max_size=8),
    st.lists(st.one_of(st.text(ALPHABET, max_size=8), st.integers(0, 7)), max_size=12),
)
def test_both_ways_redact_what_a_plain_scan_does(secrets: list[str], parts: list[object]) -> None:
    few, many = Redactor(regex_limit=10_000), Redactor(regex_limit=0)
    for secret in secrets:
        few.register(secret)
        many.register(secret)
    text = "".join(secrets[p % len(secrets)] if isinstance(p, int) else str(p) for p in parts)
    assert few.redact(text) == many.redact(text)
    # The scanning is what is under test here: the written forms each secret stands for are the module's.
    assert many.redact(text) == _reference(text, set().union(*map(_written_forms, secrets)))


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.text("ab1-", min_size=6, max_size=10), min_size=1, max_size=6),
    st.lists(st.one_of(st.text("ab1- :,{x", max_size=8), st.integers(0, 5)), max_size=12),
)
def test_text_between_secrets_of_characters_no_secret_has(secrets: list[str], parts: list[object]) -> None:
    """The index is looked up only inside runs of characters some form has: text made partly of others (JSON
    punctuation, spaces) is redacted exactly as a plain scan does, a secret cut by such a character found no more."""
    many = Redactor(regex_limit=0)
    for secret in secrets:
        many.register(secret)
    text = "".join(secrets[p % len(secrets)] if isinstance(p, int) else str(p) for p in parts)
    assert many.redact(text) == _reference(text, set().union(*map(_written_forms, secrets)))


def test_written_forms_and_overlaps_by_table() -> None:
    for limit in (0, 10_000):
        redactor = Redactor(regex_limit=limit)
        redactor.register("abcdef")
        redactor.register("abcdefgh")  # contains the first: the longer wins where both match
        redactor.register('se"cret/é')
        redactor.register("short")  # under 6 characters: not a secret
        assert redactor.redact("xabcdefghy abcdefy") == "x***y ***y"
        assert redactor.redact('k=se\\"cret/\\u00e9 q=se%22cret%2F%C3%A9 r=se%22cret%2f%c3%a9') == "k=*** q=*** r=***"
        assert redactor.redact("short and abcde") == "short and abcde"
        assert redactor.redact("") == ""


def test_many_secrets_use_the_index_and_still_find_each_one() -> None:
    redactor = Redactor()
    keys = [f"{n:04d}-key-{n * 7919 % 10_000:04d}" for n in range(500)]
    for key in keys:
        redactor.register(key)
    text = " ".join(f"job{n}={key}" for n, key in enumerate(keys))
    assert redactor.redact(text) == " ".join(f"job{n}=***" for n in range(len(keys)))
    assert redactor.redact(text + " 0000-key-").endswith(" 0000-key-")
    assert redactor.redact('{"a":"0000-key-0000"}') == '{"a":"***"}', "a secret between JSON punctuation"
    assert redactor.redact("0000-key 0000") == "0000-key 0000", "a secret cut by a character none has"
