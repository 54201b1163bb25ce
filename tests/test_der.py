"""`wire.der`: the DER walker every fast reader builds on (X.690 §8.1)."""

from __future__ import annotations

import pytest

from iotpki.wire.cmp.tlv import check_tlv_tree
from iotpki.wire.der import children, read_tlv
from iotpki.wire.errors import DecodeError

# SEQUENCE { SEQUENCE (2 octets) { OCTET STRING (3 octets) }, BOOLEAN } : the OCTET STRING runs
# one octet past its parent into the next element, which a lenient walker reads twice.
OVERRUN = bytes.fromhex("3008" "3002" "0403" "010203" "04")


def test_children_fill_their_parent() -> None:
    data = bytes.fromhex("3006" "0101ff" "0201" "05")
    _, start, end = read_tlv(data, 0)
    assert [tag for tag, _, _ in children(data, start, end)] == [0x01, 0x02]


def test_an_element_running_past_its_parent_is_malformed() -> None:
    """X.690 §8.1.1.3: a definite length counts exactly the contents octets."""
    _, start, end = read_tlv(OVERRUN, 2)
    with pytest.raises(DecodeError, match="runs past the end"):
        list(children(OVERRUN, start, end))
    with pytest.raises(DecodeError, match="runs past the end"):
        check_tlv_tree(OVERRUN)
