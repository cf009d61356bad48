"""schemathesis extensions for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS)."""
from urllib.parse import quote

import schemathesis

# Every visible ASCII character but `%`, which starts an escape.
_KEPT = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Percent-encodes the non-ASCII characters of generated header values.

    The platform under test (the local host) answers a request whose header values hold
    non-ASCII octets with a 500 of its own before any component runs, so such a value would
    only ever test the platform. Percent-encoded, it still reaches the API as unusual text;
    schemathesis revalidates the edited case, so a value that became valid is judged as valid.
    """
    for name, value in list((case.headers or {}).items()):
        if isinstance(value, str) and not value.isascii():
            case.headers[name] = quote(value, safe=_KEPT)
