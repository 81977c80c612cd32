// Telemetry from the official Azure IoT Node device SDK (azure-iot-device
// over azure-iot-device-mqtt), for bench/device's reference figure: N
// messages of 256 bytes with two application properties at QoS 1, with
// INFLIGHT sends outstanding. Environment: DEVICE_CS, N, INFLIGHT; the CA
// comes through NODE_EXTRA_CA_CERTS, the SDK from NODE_PATH (the npm
// project in interop/node). Prints one JSON line:
// {"event":"done","n":…,"wall_ns":…,"cpu_ns":…}.
'use strict';

const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

async function main() {
  const n = Number(process.env.N || 10000);
  const inflight = Number(process.env.INFLIGHT || 64);
  const client = Client.fromConnectionString(process.env.DEVICE_CS, Mqtt);
  await client.open();
  const body = Buffer.alloc(256);
  const send = () => {
    const m = new Message(body);
    m.properties.add('sensor', 'temp');
    m.properties.add('unit', 'C');
    return client.sendEvent(m);
  };
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await send();
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const wall = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ event: 'done', n, wall_ns: wall, cpu_ns: (cpu.user + cpu.system) * 1000 }) + '\n');
  await client.close();
  process.exit(0);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ event: 'error', message: String(err && err.message ? err.message : err) }) + '\n');
  process.exit(1);
});
