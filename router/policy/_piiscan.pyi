# The native PII scanner (router/policy/piiscan/*.c); pii.py wraps it.
from collections.abc import Callable

TYPES: tuple[str, ...]

def find(
    text: str, wanted_mask: int, is_jwt: Callable[[str], bool], is_ipv6: Callable[[str], bool], /
) -> list[tuple[int, str]]: ...
def detect(
    text: str, wanted_mask: int, is_jwt: Callable[[str], bool], is_ipv6: Callable[[str], bool], /
) -> int: ...
