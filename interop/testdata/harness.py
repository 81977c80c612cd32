"""Harness self-test script: one event, then exits with status 3."""
import json
import sys

import paho.mqtt.client as mqtt

print(json.dumps({"event": "ready", "paho": mqtt.__name__}), flush=True)
sys.exit(3)
