"""A device's identity timeline: one lane per stage (component, device, operational, ...),
each identity a bar from notBefore to notAfter coloured by its status and linked to its
certificate page, a marker where it was revoked or put on hold, the device's last lifecycle
event, and today, on one time axis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from markupsafe import Markup

from iotpki.core.lifecycle.device import Device, DeviceIdentity
from iotpki.protocols.console.svg.markup import element, svg, text

WIDTH, LANE, TOP, LEFT, RIGHT, AXIS = 960, 44, 28, 110, 20, 34
TICKS = 6


class _Axis:
    def __init__(self, start: datetime, end: datetime) -> None:
        span = max(end - start, timedelta(days=1))
        self.start, self.end = start - span * 0.03, end + span * 0.03

    def x(self, moment: datetime) -> float:
        moment = min(max(moment, self.start), self.end)
        return LEFT + (WIDTH - LEFT - RIGHT) * ((moment - self.start) / (self.end - self.start))


def _bounds(history: Sequence[DeviceIdentity], now: datetime) -> tuple[datetime, datetime]:
    moments = [now]
    for identity in history:
        moments.append(identity.linked_at)
        if identity.certificate is not None:
            moments += [identity.certificate.not_before, identity.certificate.not_after]
    return min(moments), max(moments)


def identity_timeline(device: Device, history: Sequence[DeviceIdentity], now: datetime,
                      link: Callable[[DeviceIdentity], str | None]) -> Markup:
    """`link`: the certificate page of an identity, if it was issued here."""
    lanes = list(dict.fromkeys(i.stage for i in history)) or ["device"]
    axis = _Axis(*_bounds(history, now))
    height = TOP + LANE * len(lanes) + AXIS
    body = [*_lane_labels(lanes), *_ticks(axis, height)]
    for identity in history:
        body += _identity(identity, TOP + LANE * lanes.index(identity.stage), axis, link)
    body += _marker(axis.x(now), height, "now", "today", "start")
    if device.state_changed_at is not None:  # its label left of the line, today's right
        body += _marker(axis.x(device.state_changed_at), height, "marker hold",
                        f"device {device.state.value}", "end")
    return svg(WIDTH, height, f"Identity timeline of {device.name}", body, class_="timeline")


def _lane_labels(lanes: list[str]) -> list[str]:
    return [text(8, TOP + LANE * n + LANE / 2 + 4, lane, class_="lane")
            for n, lane in enumerate(lanes)]


def _ticks(axis: _Axis, height: int) -> list[str]:
    found = [element("line", x1=LEFT, y1=height - AXIS + 6, x2=WIDTH - RIGHT,
                     y2=height - AXIS + 6, class_="axis")]
    for n in range(TICKS + 1):
        moment = axis.start + (axis.end - axis.start) * (n / TICKS)
        x = axis.x(moment)
        found.append(element("line", x1=f"{x:.1f}", y1=height - AXIS + 6, x2=f"{x:.1f}",
                             y2=height - AXIS + 11, class_="axis"))
        anchor = "start" if n == 0 else "end" if n == TICKS else "middle"
        found.append(text(x, height - AXIS + 24, moment.strftime("%Y-%m-%d"), class_="label",
                          text_anchor=anchor))
    return found


def _identity(identity: DeviceIdentity, y: int, axis: _Axis,
              link: Callable[[DeviceIdentity], str | None]) -> list[str]:
    record = identity.certificate
    if record is None:  # a supplier's component, known by fingerprint only
        x = axis.x(identity.linked_at)
        return [element("rect", element("title", f"{identity.stage} {identity.fingerprint[:16]}… "
                                                 "(issued elsewhere)"),
                        x=f"{x:.1f}", y=y + 8, width=60, height=LANE - 18, class_="span unknown")]
    start, end = axis.x(record.not_before), axis.x(record.not_after)
    label = f"{record.profile} {record.serial_hex[:10]}… {record.status.value}"
    title = (f"{identity.stage}: {record.subject}, serial {record.serial_hex}, "
             f"{record.not_before:%Y-%m-%d} → {record.not_after:%Y-%m-%d}, {record.status.value}")
    bar = element("rect", element("title", title), x=f"{start:.1f}", y=y + 8,
                  width=f"{max(end - start, 3):.1f}", height=LANE - 18,
                  class_=f"span {record.status.value}")
    caption = text(start + 4, y + LANE / 2 + 3, label, class_="value")
    target = link(identity)
    found = [element("a", bar + caption, href=target) if target else bar + caption]
    if record.revoked_at is not None:
        x = axis.x(record.revoked_at)
        kind = "marker hold" if record.status.value == "on-hold" else "marker"
        found.append(element("line", element("title", f"{record.status.value} at "
                                                      f"{record.revoked_at:%Y-%m-%d %H:%M}"),
                             x1=f"{x:.1f}", y1=y + 4, x2=f"{x:.1f}", y2=y + LANE - 6,
                             class_=kind))
    return found


def _marker(x: float, height: int, kind: str, label: str, anchor: str) -> list[str]:
    shift = 4 if anchor == "start" else -4
    return [element("line", element("title", label), x1=f"{x:.1f}", y1=TOP - 8, x2=f"{x:.1f}",
                    y2=height - AXIS + 6, class_=kind),
            text(x + shift, TOP - 10, label, class_="label", text_anchor=anchor)]
