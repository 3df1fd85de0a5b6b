"""Deliveries read straight off a consuming connection's input, three frames in one step.

pika turns every delivery's three frames (Basic.Deliver, content header, body) into three
frame objects, routes each through its connection, its channel's content assembler and
its blocking adapter's event queue, and only then calls the consumer: about 15 µs of CPU
per delivery measured alone here, a quarter of the assignment consumer's CPU per event.
`install` puts a reader in front of pika's on one consuming channel. Where the input holds
a whole delivery for that channel's consumer (the three frames complete, the body in one
frame), the reader decodes it with `struct`; everything else (heartbeats, RPC replies, a
cancel, a delivery split across reads, a body over several frames or none) goes to pika,
frame by frame, in the order it arrived.

What the reader decoded joins the blocking channel's queue of pending events, behind what
pika queued before it, and pika dispatches it (`on_delivery(tag, body, headers)` per
delivery) where it would have dispatched its own: deliveries reach the consumer in tag
order, which its `multiple` acks rely on, and `process_data_events` returns as it would
after a delivery pika decoded. The reader counts what it takes in the connection's byte
and frame counters, which pika's heartbeat checker reads. The first
delivery of each channel is also decoded by pika and compared; on any difference the
reader steps aside for good and pika reads everything. It relies on attributes of pika
1.x that are not public API: where one is missing, `install` leaves pika alone.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from pika import frame, spec

log = logging.getLogger(__name__)

OnDelivery = Callable[[int, bytes, dict], None]

_FRAME_HEAD = struct.Struct(">BHI")  # frame type, channel, payload size
_METHOD_ID = struct.Struct(">HH")  # class, method
_DELIVERY_TAG = struct.Struct(">Q")
_CONTENT_HEAD = struct.Struct(">HHQH")  # class, weight, body size, first property flags
_FRAME_END = spec.FRAME_END
_BASIC = spec.Basic.INDEX  # 60
_DELIVER = spec.Basic.Deliver.INDEX & 0xFFFF  # 60
# Property flags that need pika's decoder: the headers table (x-delivery-count), or a
# second flag word. A delivery's other properties are not read by the consumers.
_DECODE_PROPERTIES = spec.BasicProperties.FLAG_HEADERS | 0x0001
_PIKA_ATTRIBUTES = ("_frame_buffer", "_read_frame", "_trim_frame_buffer", "_process_frame",
                    "bytes_received", "frames_received", "_on_data_available")


def install(connection, channel, consumer_tag: str, on_delivery: OnDelivery) -> bool:
    """Read `consumer_tag`'s deliveries on `channel` (a BlockingChannel of the
    BlockingConnection `connection`) with the reader; True if installed."""
    impl = getattr(connection, "_impl", None)
    missing = [name for name in _PIKA_ATTRIBUTES if not hasattr(impl, name)]
    missing += [name for name in ("_add_pending_event", "_pending_events", "_impl")
                if not hasattr(channel, name)]
    if missing:
        log.warning("pika lacks %s; deliveries read by pika", ", ".join(missing))
        return False
    reader = _Reader(impl, channel, consumer_tag, on_delivery)
    impl._on_data_available = reader.on_data_available  # pika's transport calls this
    return True


class _Reader:
    def __init__(self, impl, channel, consumer_tag: str, on_delivery: OnDelivery):
        self._impl = impl
        self._channel = channel
        self._channel_impl = channel._impl
        self._number = channel.channel_number
        self._tag = consumer_tag.encode()
        self._tag_text = consumer_tag
        self._on_delivery = on_delivery
        self._checked = False
        self.active = True
        self.taken = 0  # deliveries this reader decoded (tests read it)

    def on_data_available(self, data: bytes) -> None:
        """pika's `Connection._on_data_available`, with whole deliveries taken first."""
        impl = self._impl
        buf = impl._frame_buffer + data if impl._frame_buffer else data
        pos = 0
        items: list[tuple[int, bytes, dict]] = []
        try:
            while pos < len(buf):
                size = self._delivery_at(buf, pos, items) if self.active else 0
                if size:
                    pos += size
                    continue
                # Not a whole delivery of ours: pika reads one frame, as it would have.
                if pos:
                    self._pass_on(pos, items)
                    buf, pos, items = buf[pos:], 0, []
                impl._frame_buffer = buf
                consumed, value = impl._read_frame()
                if not value:
                    return  # an incomplete frame stays buffered for the next read
                impl._trim_frame_buffer(consumed)
                impl._process_frame(value)
                buf = impl._frame_buffer  # emptied if that frame closed the connection
        finally:
            if pos:
                self._pass_on(pos, items)
                impl._frame_buffer = buf[pos:]

    def _pass_on(self, consumed: int, items: list) -> None:
        """Count what the reader took, and queue its deliveries behind whatever pika
        queued before them: the channel dispatches both in order, when pika would have."""
        self._impl.bytes_received += consumed
        self._impl.frames_received += 3 * len(items)
        self.taken += len(items)
        self._channel._add_pending_event(_Deliveries(self._on_delivery, items))

    def _delivery_at(self, buf: bytes, pos: int, items: list) -> int:
        """The size of the whole delivery for our consumer that starts at `pos`, after
        adding it to `items`; 0 (and nothing added) for anything else."""
        end = len(buf)
        if end - pos < 11:
            return 0
        kind, channel, size = _FRAME_HEAD.unpack_from(buf, pos)
        if kind != spec.FRAME_METHOD or channel != self._number:
            return 0
        if _METHOD_ID.unpack_from(buf, pos + 7) != (_BASIC, _DELIVER):
            return 0
        header_at = pos + 7 + size + 1
        if header_at + 21 > end or buf[header_at - 1] != _FRAME_END:
            return 0
        tag_end = pos + 12 + buf[pos + 11]  # the consumer tag, a short string
        if buf[pos + 12 : tag_end] != self._tag:
            return 0
        (delivery_tag,) = _DELIVERY_TAG.unpack_from(buf, tag_end)
        kind, channel, size = _FRAME_HEAD.unpack_from(buf, header_at)
        body_at = header_at + 7 + size + 1
        if (kind != spec.FRAME_HEADER or channel != self._number or body_at + 7 > end
                or buf[body_at - 1] != _FRAME_END):
            return 0
        class_id, _weight, body_size, flags = _CONTENT_HEAD.unpack_from(buf, header_at + 7)
        kind, channel, size = _FRAME_HEAD.unpack_from(buf, body_at)
        after = body_at + 7 + size + 1
        if (class_id != _BASIC or body_size == 0 or kind != spec.FRAME_BODY
                or channel != self._number or size != body_size or after > end
                or buf[after - 1] != _FRAME_END):
            return 0
        if not self._consuming():
            return 0
        headers = {}
        if flags & _DECODE_PROPERTIES:
            properties = spec.BasicProperties()
            properties.decode(buf, header_at + 7 + 12)
            if isinstance(properties.headers, dict):
                headers = properties.headers
        body = buf[body_at + 7 : after - 1]
        if not self._checked and not self._agrees(buf[pos:after], delivery_tag, body, headers):
            return 0
        items.append((delivery_tag, body, headers))
        return after - pos

    def _consuming(self) -> bool:
        """Our consumer is live on an open channel (else pika decides what a delivery
        for a cancelled consumer gets)."""
        channel, tag = self._channel_impl, self._tag_text
        return channel.is_open and tag in channel._consumers and tag not in channel._cancelled

    def _agrees(self, data: bytes, delivery_tag: int, body: bytes, headers: dict) -> bool:
        """The first delivery, decoded by pika too: the same tag, body and headers, or the
        reader steps aside."""
        self._checked = True
        try:
            values = []
            while data:
                consumed, value = frame.decode_frame(data)
                values.append(value)
                data = data[consumed:]
            method, header, content = values
            same = (method.method.delivery_tag == delivery_tag
                    and method.method.consumer_tag == self._tag_text
                    and content.fragment == body
                    and (header.properties.headers or {}) == headers)
        except Exception as error:  # noqa: BLE001 - any doubt: pika reads
            log.warning("delivery check failed (%r); deliveries read by pika", error)
            same = False
        if not same:
            log.warning("deliveries decoded differently from pika; deliveries read by pika")
            self.active = False
        return same


class _Deliveries:
    """Deliveries the reader took from one stretch of input, as one of the blocking
    channel's pending events (pika calls `dispatch` for events of types it does not know)."""

    __slots__ = ("items", "on_delivery")

    def __init__(self, on_delivery: OnDelivery, items: list):
        self.on_delivery = on_delivery
        self.items = items

    def dispatch(self) -> None:
        on_delivery = self.on_delivery
        for tag, body, headers in self.items:
            on_delivery(tag, body, headers)
