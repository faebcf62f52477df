"""GStreamer as an RFC 4733 peer over SRTP (AES_CM_128_HMAC_SHA1_80), for srtpd's tests.

    gst_dtmf.py send PORT KEY_HEX CLOCK DIGITS FROM_PORT
        rtpdtmfsrc sends each digit (250 ms tone, 150 ms pause) from 127.0.0.1:FROM_PORT to
        127.0.0.1:PORT as payload type 101 on a CLOCK Hz clock; prints "sent" when done.
    gst_dtmf.py receive PORT KEY_HEX CLOCK SECONDS
        listens on 127.0.0.1:PORT; rtpdtmfdepay reads the telephone-events of payload type
        101 and each event it reports is printed as a line with its number; prints "ready"
        once listening.

KEY_HEX is the 30-byte master key and salt in hex.
"""

import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

EVENTS = {str(n): n for n in range(10)} | {"*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
SUITE = "rtp-cipher=aes-128-icm rtp-auth=hmac-sha1-80 rtcp-cipher=aes-128-icm rtcp-auth=hmac-sha1-80"


def dtmf_event(start, number=0):
    fields = f"dtmf-event, type=(int)1, start=(boolean){'true' if start else 'false'}"
    if start:
        fields += f", number=(int){number}, volume=(int)10"
    return Gst.Event.new_custom(Gst.EventType.CUSTOM_UPSTREAM, Gst.Structure.new_from_string(fields))


def send(port, key, clock, digits, from_port):
    pipeline = Gst.parse_launch(
        f"rtpdtmfsrc name=dtmf pt=101 clock-rate={clock} ! "
        f"srtpenc key={key} {SUITE} ! udpsink host=127.0.0.1 port={port} "
        f"bind-address=127.0.0.1 bind-port={from_port}"
    )
    pipeline.set_state(Gst.State.PLAYING)
    pad = pipeline.get_by_name("dtmf").get_static_pad("src")
    time.sleep(0.2)
    for digit in digits:
        assert pad.send_event(dtmf_event(True, EVENTS[digit])), "rtpdtmfsrc took the start"
        time.sleep(0.25)
        assert pad.send_event(dtmf_event(False)), "rtpdtmfsrc took the stop"
        time.sleep(0.15)
    time.sleep(0.3)
    pipeline.set_state(Gst.State.NULL)
    print("sent", flush=True)


def receive(port, key, clock, seconds):
    caps = (
        f"application/x-srtp, media=(string)audio, encoding-name=(string)TELEPHONE-EVENT, "
        f"clock-rate=(int){clock}, payload=(int)101, srtp-key=(buffer){key}, "
        f"srtp-cipher=(string)aes-128-icm, srtp-auth=(string)hmac-sha1-80, "
        f"srtcp-cipher=(string)aes-128-icm, srtcp-auth=(string)hmac-sha1-80"
    )
    pipeline = Gst.parse_launch(
        f'udpsrc address=127.0.0.1 port={port} caps="{caps}" ! srtpdec name=dec ! '
        f"rtpdtmfdepay name=depay ! fakesink sync=false "
        # srtpd multiplexes RTCP on the RTP port (RFC 5761): srtpdec hands it to rtcp_src.
        f"dec.rtcp_src ! fakesink sync=false async=false"
    )
    # srtpdec asks for the key of every SSRC it has not seen: the peer's SSRC is not known here.
    pipeline.get_by_name("dec").connect("request-key", lambda _dec, _ssrc: Gst.Caps.from_string(caps))
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = bus.timed_pop(100 * Gst.MSECOND)
        if msg is None:
            continue
        if msg.type == Gst.MessageType.ERROR:
            print("error", msg.parse_error()[0].message, flush=True)
            break
        s = msg.get_structure()
        if msg.type == Gst.MessageType.ELEMENT and s is not None and s.get_name() == "dtmf-event":
            print(s.get_value("number"), flush=True)
    pipeline.set_state(Gst.State.NULL)


def main():
    Gst.init(None)
    mode, port, key, clock = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if mode == "send":
        send(port, key, clock, sys.argv[5], int(sys.argv[6]))
    else:
        receive(port, key, clock, float(sys.argv[5]))


if __name__ == "__main__":
    main()
