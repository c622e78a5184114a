"""The ``signals`` channel's subscribe frame (protocol only; the channel end to end is
``tests/signals/test_live.py``)."""

from __future__ import annotations

import pytest

from quantdesk.stream.protocol import Channel, ProtocolError, SubscribeOp, parse_operation


def test_a_signals_subscription_names_a_model_and_instruments() -> None:
    op = parse_operation(
        '{"op": "subscribe", "id": "s", "channel": "signals", "model": "momo",'
        ' "instruments": ["sim:alpha", "SIM:ALPHA"]}'
    )
    assert isinstance(op, SubscribeOp)
    assert (op.channel, op.model, op.instruments) == (Channel.SIGNALS, "momo", ["SIM:ALPHA"])
    # Unsubscribing without instruments leaves the model on every instrument.
    assert isinstance(
        parse_operation('{"op": "unsubscribe", "channel": "signals", "model": "momo"}'),
        SubscribeOp,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"op": "subscribe", "channel": "signals", "instruments": ["SIM:ALPHA"]}',
         "model is required on signals"),
        ('{"op": "subscribe", "channel": "ticks", "model": "m", "instruments": ["SIM:ALPHA"]}',
         "taken by signals only"),
        ('{"op": "subscribe", "channel": "signals", "model": "m"}', "at least one"),
        ('{"op": "subscribe", "channel": "signals", "model": "m", "instruments": ["SIM:A"],'
         ' "account_id": "x"}', "not account_id"),
    ],
)  # fmt: skip
def test_refusals_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_operation(text)
    assert refused.value.code.value == "syntax"
    assert message in refused.value.message
