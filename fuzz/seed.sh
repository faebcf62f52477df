#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ from the test fixtures
# (stanzas), the wa-e2e vectors, and a few packets and request lines of each kind. The
# fuzzers grow these as they run; nothing under fuzz/corpus is committed.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures/stanzas
mk() { mkdir -p "corpus/$1"; }
for t in stanza_xml stanza_json control_line srtp_unprotect rtp_views endpoint_datagrams ogg_opus keying wav media_packets bot_messages; do
  mk "$t"
done
cp "$fixtures"/*.xml corpus/stanza_xml/
cp "$fixtures"/*.json corpus/stanza_json/

# Control lines: one per method, and a call.start and a call.stanza that succeed.
key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd
i=0
while IFS= read -r line; do
  printf '%s' "$line" >"corpus/control_line/line-$i"
  i=$((i + 1))
done <<LINES
{"jsonrpc":"2.0","id":1,"method":"call.start","params":{"call_id":"F1","candidates":[{"ip":"127.0.0.1","port":5000}],"keying":{"scheme":"sdes","profile":"AES_CM_128_HMAC_SHA1_80","tx":"$key","rx":"$key"},"audio":{"payload_type":111,"clock_rate":48000,"source":{"kind":"rtp"},"sink":{"kind":"file","path":"rec.opus","overwrite":true}}}}
{"jsonrpc":"2.0","id":2,"method":"call.stanza","params":{"self":"111@s.whatsapp.net","call_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","xml":"<call from=\"222@s.whatsapp.net\"><offer call-id=\"C2\" call-creator=\"222@s.whatsapp.net\"><audio enc=\"opus\" rate=\"16000\"/><te priority=\"1\" ip=\"127.0.0.1\" port=\"5002\"/></offer></call>"}}
{"jsonrpc":"2.0","id":3,"method":"call.mute","params":{"call_id":"F1","media":"audio","muted":true}}
{"jsonrpc":"2.0","id":4,"method":"call.video","params":{"call_id":"F1","enabled":false}}
{"jsonrpc":"2.0","id":5,"method":"call.peer_state","params":{"call_id":"F1","hold":true}}
{"jsonrpc":"2.0","id":6,"method":"call.play","params":{"call_id":"F1","path":"clip.opus","loop":true}}
{"jsonrpc":"2.0","id":7,"method":"call.record","params":{"call_id":"F1","path":null}}
{"jsonrpc":"2.0","id":8,"method":"call.stats","params":{"call_id":"F1"}}
{"jsonrpc":"2.0","id":"nine","method":"call.list"}
{"jsonrpc":"2.0","id":10,"method":"call.terminate","params":{"call_id":"F1","reason":"done"}}
{"jsonrpc":"2.0","id":11,"method":"daemon.status","params":{}}
LINES

# Packets: RTP, RTP with CSRCs and an extension, RTCP sender report, STUN Binding request.
rtp='\x80\x6f\x00\x01\x00\x00\x03\xc0\x12\x34\x56\x78\xf8\xff\xfe\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b'
ext='\x92\x6f\x00\x02\x00\x00\x07\x80\x12\x34\x56\x78\xaa\xaa\xaa\xaa\xbb\xbb\xbb\xbb\xbe\xde\x00\x01\x10\xff\x00\x00\xf8\xff\xfe'
sr='\x81\xc8\x00\x06\x12\x34\x56\x78\xe0\x00\x00\x00\x00\x00\x00\x01\x00\x00\x03\xc0\x00\x00\x00\x01\x00\x00\x00\x64\x80\x00\x00\x01\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a'
stun='\x00\x01\x00\x00\x21\x12\xa4\x42\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c'
for name in rtp ext sr stun; do
  printf "${!name}" >"corpus/rtp_views/$name"
  printf "\x00${!name}" >"corpus/srtp_unprotect/$name"
  # One record on each kind of socket: socket, source, ms, length, datagram.
  for socket in 0 1 2 3; do
    len=$(printf "${!name}" | wc -c)
    printf "\x0$socket\x00\x14\x00\x$(printf '%02x' "$len")${!name}" >"corpus/endpoint_datagrams/$name-$socket"
  done
done

# Keying: the wa-e2e vectors' call key, and SDES lines.
call_key=$(sed -n 's/^call_key *= *//p' ../../shared/vectors/wa-e2e.txt 2>/dev/null || true)
if [ -n "$call_key" ]; then
  python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$call_key" \
    >corpus/keying/call-key
fi
printf 'AES_CM_128_HMAC_SHA1_80\n%s\n%s' "$key" "$key" >corpus/keying/sdes
printf 'AEAD_AES_128_GCM\n%s\n%s' "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==" "$key" >corpus/keying/gcm

# An Ogg Opus clip and WAV files, where ffmpeg is at hand.
if command -v ffmpeg >/dev/null 2>&1; then
  ffmpeg -loglevel error -y -f lavfi -i sine=frequency=440:duration=0.2 -c:a libopus -b:a 16k \
    corpus/ogg_opus/sine.opus
  ffmpeg -loglevel error -y -f lavfi -i sine=frequency=440:duration=0.1:sample_rate=16000 \
    -c:a pcm_s16le corpus/wav/mono.wav
  ffmpeg -loglevel error -y -f lavfi -i sine=frequency=440:duration=0.1:sample_rate=44100 \
    -ac 2 -c:a pcm_s16le corpus/wav/stereo.wav
fi

# Media packets: records of kind, sequence number, timestamp, ms, length, payload: an Opus
# silence frame in turn, a PCMU payload, telephone-events for a digit and its end.
printf '\x00\x00\x01\x00\x00\x03\xc0\x14\x00\x03\xf8\xff\xfe\x00\x00\x02\x00\x00\x07\x80\x14\x00\x03\xf8\xff\xfe' \
  >corpus/media_packets/opus
printf '\x01\x00\x01\x00\x00\x00\xa0\x14\x00\x04\xff\x7f\x00\x80' >corpus/media_packets/pcmu
printf '\x02\x00\x01\x00\x00\x01\x00\x14\x00\x04\x05\x0a\x00\xa0\x02\x00\x02\x00\x00\x01\x00\x14\x00\x04\x05\x8a\x03\x20' \
  >corpus/media_packets/dtmf

# Bot messages: a leading byte (bit 0: L16 dialect, bit 1: binary frame), then the frame.
printf '\x00{"event":"media","streamSid":"MZ1","media":{"payload":"fn5+fn5+fn5+fn5+"}}' >corpus/bot_messages/media
printf '\x00{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}' >corpus/bot_messages/mark
printf '\x00{"event":"clear","streamSid":"MZ1"}' >corpus/bot_messages/clear
printf '\x03\x01\x00\x02\x00\xff\x7f\x00\x80' >corpus/bot_messages/l16
