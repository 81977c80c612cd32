"""The seed page's device flow with Eclipse paho-mqtt (Debian's 1.6 API).

Run by interop/python_test.go against the emulator. Environment:
  HUB_HOST     the hub's host name (username, SAS resource, TLS name)
  HUB_PORT     the port to connect to (MQTT over TLS, or HTTPS for websockets)
  HUB_TRANSPORT  "tcp" (default) or "websockets" (WSS at /$iothub/websocket)
  HUB_CA       PEM file of the CA to trust
  DEVICE_ID    the device identity
  DEVICE_KEY   the device's base64 symmetric key
  MODE         "seed" (default): the whole flow; "resume": reconnect with
               CleanSession=0 and no SUBSCRIBE, and report what the hub
               delivers on the restored session (queued C2D)
  SAS_TTL      optional: token lifetime in seconds (default 3600; negative
               makes an expired token)
  WILL_MID     optional: set a Will (telemetry topic with this $.mid), which
               the hub sends as telemetry when the connection drops abruptly

Everything IoT Hub-specific is done by hand here, as the seed page does:
the SAS token is computed with hmac/hashlib, topics and property bags are
built and parsed with urllib. One JSON object per line on stdout reports
each step; commands arrive as JSON lines on stdin.
"""

import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt

WAIT = 10.0  # seconds allowed for each hub answer


_emit_lock = threading.Lock()


def emit(event, **fields):
    """One JSON line; paho's thread and the main thread both report."""
    fields["event"] = event
    line = json.dumps(fields) + "\n"
    with _emit_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def pct(s):
    """Percent-encode everything but RFC 3986 unreserved characters."""
    return urllib.parse.quote(s, safe="-_.~")


def sas_token(host, device_id, key_b64, ttl=3600):
    resource = host + "/devices/" + pct(device_id)
    sr = pct(resource)
    se = str(int(time.time()) + ttl)
    mac = hmac.new(base64.b64decode(key_b64), (sr + "\n" + se).encode("utf-8"), hashlib.sha256)
    sig = pct(base64.b64encode(mac.digest()).decode("ascii"))
    return "SharedAccessSignature sr=%s&sig=%s&se=%s" % (sr, sig, se)


def parse_bag(bag):
    """Split a property bag (k=v&k2=v2, keys and values percent-encoded)."""
    props = {}
    for pair in bag.split("&"):
        if pair == "":
            continue
        k, sep, v = pair.partition("=")
        props[urllib.parse.unquote(k)] = urllib.parse.unquote(v) if sep else None
    return props


def query_of(topic):
    """The parameters after the last '?' of a twin or method topic."""
    _, _, q = topic.rpartition("?")
    return parse_bag(q)


class Inbox:
    """Messages received by paho's network thread, for the main thread."""

    def __init__(self):
        self.cond = threading.Condition()
        self.msgs = []

    def put(self, topic, payload):
        with self.cond:
            self.msgs.append((topic, payload))
            self.cond.notify_all()

    def take(self, pred, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, (topic, payload) in enumerate(self.msgs):
                    if pred(topic):
                        del self.msgs[i]
                        return topic, payload
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, None
                self.cond.wait(left)


def wait_and_disconnect(client):
    """Report readiness, let on_message report C2D, desired patches and
    method calls, and disconnect cleanly when the test says so."""
    emit("ready")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "disconnect":
            break
    info = client.disconnect()
    emit("disconnected", rc=info)
    return 0


def main():
    host = os.environ["HUB_HOST"]
    port = int(os.environ["HUB_PORT"])
    device_id = os.environ["DEVICE_ID"]
    key = os.environ["DEVICE_KEY"]

    inbox = Inbox()
    connected = threading.Event()
    subscribed = threading.Event()
    acked = {}
    acked_cond = threading.Condition()
    state = {}

    transport = os.environ.get("HUB_TRANSPORT", "tcp")
    client = mqtt.Client(client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311, transport=transport)
    if transport == "websockets":
        client.ws_set_options(path="/$iothub/websocket")  # paho offers subprotocol "mqtt"
    client.username_pw_set(host + "/" + device_id + "/?api-version=2021-04-12", sas_token(host, device_id, key, int(os.environ.get("SAS_TTL", "3600"))))
    client.tls_set(ca_certs=os.environ["HUB_CA"], tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if os.environ.get("WILL_MID"):
        client.will_set("devices/%s/messages/events/%%24.mid=%s&reason=gone" % (device_id, pct(os.environ["WILL_MID"])),
                        json.dumps({"will": True}), qos=1)

    def on_connect(c, userdata, flags, rc):
        state["rc"] = rc
        state["session_present"] = bool(flags.get("session present"))
        connected.set()

    def on_subscribe(c, userdata, mid, granted):
        state["granted"] = list(granted)
        subscribed.set()

    def on_publish(c, userdata, mid):
        with acked_cond:
            acked[mid] = True
            acked_cond.notify_all()

    def on_message(c, userdata, msg):
        topic = msg.topic
        if topic.startswith("devices/%s/messages/devicebound/" % device_id):
            bag = topic[len("devices/%s/messages/devicebound/" % device_id):]
            emit("c2d", topic=topic, props=parse_bag(bag), body=msg.payload.decode("utf-8"), qos=msg.qos)
        elif topic.startswith("$iothub/twin/PATCH/properties/desired/"):
            emit("desired", version=query_of(topic).get("$version"), body=json.loads(msg.payload or b"{}"))
        elif topic.startswith("$iothub/methods/POST/"):
            name = topic[len("$iothub/methods/POST/"):].split("/")[0]
            rid = query_of(topic).get("$rid")
            req = json.loads(msg.payload) if msg.payload else None
            emit("method", name=name, rid=rid, payload=req)
            reply = json.dumps({"echo": req, "from": "python"})
            c.publish("$iothub/methods/res/200/?$rid=" + rid, reply, qos=0)
        else:
            inbox.put(topic, msg.payload)

    def on_disconnect(c, userdata, rc):
        if rc != 0:  # not our own DISCONNECT: the hub closed the connection
            emit("connection_lost", rc=rc)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message

    try:
        client.connect(host, port, keepalive=60)
    except Exception as e:  # TLS or TCP failure: report and stop
        emit("error", message="connect: %r" % (e,))
        return 1
    client.loop_start()
    try:
        if not connected.wait(WAIT):
            emit("error", message="no CONNACK")
            return 1
        if state["rc"] != 0:
            emit("refused", rc=state["rc"])
            return 2
        emit("connected", session_present=state["session_present"])

        if os.environ.get("MODE") == "resume":
            # The subscriptions of the persistent session are the hub's to
            # restore: C2D queued while offline arrives without a SUBSCRIBE.
            return wait_and_disconnect(client)

        client.subscribe([
            ("devices/%s/messages/devicebound/#" % device_id, 1),
            ("$iothub/twin/res/#", 0),
            ("$iothub/twin/PATCH/properties/desired/#", 0),
            ("$iothub/methods/POST/#", 0),
        ])
        if not subscribed.wait(WAIT):
            emit("error", message="no SUBACK")
            return 1
        emit("subscribed", granted=state["granted"])

        # Telemetry at QoS 1 with system and application properties.
        bag = "&".join([
            "%24.mid=" + pct("seed-1"),
            "%24.ct=" + pct("application/json"),
            "%24.ce=utf-8",
            pct("alert") + "=" + pct("high temp"),
            pct("tricky key") + "=" + pct("a&b=c/d"),
        ])
        info = client.publish("devices/%s/messages/events/%s" % (device_id, bag), json.dumps({"temp": 21.5}), qos=1)
        with acked_cond:
            if not acked_cond.wait_for(lambda: info.mid in acked, WAIT):
                emit("error", message="no PUBACK for telemetry")
                return 1
        emit("telemetry", mid="seed-1")

        # RETAIN=1: forwarded, not stored, stamped mqtt-retain.
        info = client.publish("devices/%s/messages/events/%%24.mid=seed-retained" % device_id, b"retained", qos=1, retain=True)
        with acked_cond:
            if not acked_cond.wait_for(lambda: info.mid in acked, WAIT):
                emit("error", message="no PUBACK for retained telemetry")
                return 1
        emit("retained", mid="seed-retained")

        # Twin GET.
        client.publish("$iothub/twin/GET/?$rid=get1", b"", qos=0)
        topic, payload = inbox.take(lambda t: t.startswith("$iothub/twin/res/") and query_of(t).get("$rid") == "get1")
        if topic is None:
            emit("error", message="no twin GET response")
            return 1
        emit("twin", status=int(topic.split("/")[3]), body=json.loads(payload or b"null"))

        # Reported PATCH.
        patch = {"seed": "python", "telemetryInterval": 5}
        client.publish("$iothub/twin/PATCH/properties/reported/?$rid=patch1", json.dumps(patch), qos=0)
        topic, payload = inbox.take(lambda t: t.startswith("$iothub/twin/res/") and query_of(t).get("$rid") == "patch1")
        if topic is None:
            emit("error", message="no reported PATCH response")
            return 1
        emit("reported", status=int(topic.split("/")[3]), version=query_of(topic).get("$version"), body=payload.decode("utf-8"))

        return wait_and_disconnect(client)
    finally:
        client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
