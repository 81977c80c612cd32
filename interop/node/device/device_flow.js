// A device built on the official Azure IoT Node device SDK, unchanged,
// driven by interop/node_device_test.go. Environment:
//   DEVICE_CS        device connection string (HostName=localhost;DeviceId=…;SharedAccessKey=…);
//                    with ;ModuleId=… the script is a module (ModuleClient, no C2D)
//   TRANSPORT        Mqtt (TLS, port 8883) or MqttWs (WSS, port 443); the SDK fixes the ports
//   HUB_CA           optional: a CA PEM file passed with setOptions({ca}) (otherwise
//                    the test sets NODE_EXTRA_CA_CERTS)
//   TOKEN_VALID_S, TOKEN_MARGIN_S   optional: SAS token lifetime and renewal margin
//                    (setOptions({tokenRenewal})), for the renewal test
//   DEVICE_CERT, DEVICE_CERT_KEY   optional: PEM files of an X.509 client certificate
//                    and key (the connection string then has x509=true)
//   NO_RETRY=1       optional: no reconnection after a disconnect (kick test)
//   OPEN_ONLY=1      optional: only open (and report how it fails); no twin, no methods
// Prints one JSON object per line for each step; takes commands as JSON
// lines on stdin: telemetry, report, get_twin, close.
'use strict';

const fs = require('fs');
const readline = require('readline');
const { Client, ModuleClient, Message, SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');

const emit = (event, fields) => process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
const fail = (where, err) => {
  emit('error', { where, name: err && err.constructor ? err.constructor.name : '', message: String(err && err.message ? err.message : err) });
};

function seOf(token) {
  const m = /[?&\s]se=(\d+)/.exec(' ' + token.replace(/^SharedAccessSignature /, '&'));
  return m ? Number(m[1]) : 0;
}

async function main() {
  const transports = { Mqtt, MqttWs };
  const Transport = transports[process.env.TRANSPORT || 'Mqtt'];
  if (!Transport) throw new Error('unknown TRANSPORT ' + process.env.TRANSPORT);

  const valid = Number(process.env.TOKEN_VALID_S || 0);
  const margin = Number(process.env.TOKEN_MARGIN_S || 0);
  const isModule = /(^|;)ModuleId=/i.test(process.env.DEVICE_CS);
  const Ctor = isModule ? ModuleClient : Client;
  const options = {};
  let client;
  if (process.env.DEVICE_CERT) {
    // X.509: the connection string says x509=true; cert and key go in options.
    client = Ctor.fromConnectionString(process.env.DEVICE_CS, Transport);
    options.cert = fs.readFileSync(process.env.DEVICE_CERT, 'utf8');
    options.key = fs.readFileSync(process.env.DEVICE_CERT_KEY, 'utf8');
  } else {
    const auth = SharedAccessKeyAuthenticationProvider.fromConnectionString(process.env.DEVICE_CS);
    auth.on('newTokenAvailable', (creds) => emit('token', { se: seOf(creds.sharedAccessSignature) }));
    client = Ctor.fromAuthenticationProvider(auth, Transport);
  }

  if (process.env.HUB_CA) options.ca = fs.readFileSync(process.env.HUB_CA, 'utf8');
  if (valid > 0) options.tokenRenewal = { tokenValidTimeInSeconds: valid, tokenRenewalMarginInSeconds: margin };
  if (Object.keys(options).length > 0) await client.setOptions(options);
  if (process.env.NO_RETRY === '1') client.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => 0 });

  client.on('error', (err) => emit('client_error', { name: err.constructor.name, message: String(err.message) }));
  client.on('disconnect', (d) => emit('disconnect', { reason: d && d.reason ? String(d.reason) : '', name: d && d.transportObj ? d.transportObj.constructor.name : '' }));

  if (process.env.OPEN_ONLY === '1') {
    try {
      await client.open();
      emit('connected');
    } catch (err) {
      emit('open_failed', { name: err.constructor.name, message: String(err.message), transportError: err.transportError ? String(err.transportError.message || err.transportError) : '' });
      process.exit(0);
    }
  } else {
    if (!isModule) client.on('message', (msg) => {
      const props = {};
      for (const p of msg.properties.propertyList) props[p.key] = p.value;
      emit('c2d', {
        body: msg.data.toString('utf8'),
        messageId: msg.messageId || '',
        correlationId: msg.correlationId || '',
        to: msg.to || '',
        expiryTimeUtc: msg.expiryTimeUtc ? String(msg.expiryTimeUtc) : '',
        props,
      });
      client.complete(msg, (err) => { if (err) fail('complete', err); });
    });
    const onMethod = (isModule ? client.onMethod : client.onDeviceMethod).bind(client);
    onMethod('echo', (req, res) => {
      emit('method', { name: req.methodName, requestId: req.requestId, payload: req.payload === undefined ? null : req.payload });
      res.send(200, { echo: req.payload, transport: process.env.TRANSPORT || 'Mqtt', module: isModule }, (err) => { if (err) fail('method response', err); });
    });

    await client.open();
    emit('connected');
  }

  let twin = null;
  if (process.env.OPEN_ONLY !== '1') {
    twin = await client.getTwin();
    emit('twin', { desired: twin.properties.desired, reported: twin.properties.reported });
    twin.on('properties.desired', (delta) => emit('desired', { delta }));
  }
  emit('ready');

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = JSON.parse(line);
    try {
      switch (cmd.cmd) {
        case 'telemetry': {
          const m = new Message(JSON.stringify(cmd.body));
          if (cmd.messageId) m.messageId = cmd.messageId;
          m.contentType = 'application/json';
          m.contentEncoding = 'utf-8';
          for (const [k, v] of Object.entries(cmd.props || {})) m.properties.add(k, v);
          await client.sendEvent(m);
          emit('sent', { messageId: cmd.messageId || '' });
          break;
        }
        case 'report':
          await new Promise((resolve, reject) => twin.properties.reported.update(cmd.patch, (err) => (err ? reject(err) : resolve())));
          emit('reported');
          break;
        case 'get_twin': {
          const t = await new Promise((resolve, reject) => twin.get((err, t2) => (err ? reject(err) : resolve(t2))));
          emit('twin', { desired: t.properties.desired, reported: t.properties.reported });
          break;
        }
        case 'close':
          await client.close();
          emit('closed');
          process.exit(0);
          break;
        default:
          throw new Error('unknown command ' + cmd.cmd);
      }
    } catch (err) {
      fail(cmd.cmd, err);
    }
  }
}

main().catch((err) => {
  fail('main', err);
  process.exit(1);
});
