#!/usr/bin/env node
// gen-tokens.js: SAS tokens made by the official Azure IoT Node device SDK,
// for hubwire's differential test of sas scope checks
// (sas/node_sdk_test.go runs it).
//
// stdin:  a JSON array of identities,
//         [{"host": "...", "deviceId": "...", "moduleId": "..." (optional),
//           "key": "<base64>", "keyName": "..." (optional)}, ...]
// stdout: a JSON array of the token strings, in the same order.
//
// Each token comes from the SDK's own SharedAccessKeyAuthenticationProvider
// (azure-iot-device), the object a Node device client authenticates with:
// it builds the resource URI and signs it exactly as a real device would.
// The provider is built from a credentials object rather than a connection
// string because valid ids may hold ';' and '=', which a connection string
// cannot carry.
'use strict';

const { SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

async function tokenFor(id) {
  const provider = new SharedAccessKeyAuthenticationProvider({
    host: id.host,
    deviceId: id.deviceId,
    moduleId: id.moduleId || undefined,
    sharedAccessKeyName: id.keyName || undefined,
    sharedAccessKey: id.key,
  });
  try {
    const creds = await provider.getDeviceCredentials();
    return creds.sharedAccessSignature;
  } finally {
    provider.stop(); // its renewal timer would keep the process alive
  }
}

async function main() {
  const ids = JSON.parse(await readStdin());
  if (!Array.isArray(ids)) {
    throw new Error('stdin must be a JSON array');
  }
  const tokens = [];
  for (const id of ids) {
    tokens.push(await tokenFor(id));
  }
  process.stdout.write(JSON.stringify(tokens) + '\n');
}

main().catch((err) => {
  process.stderr.write('gen-tokens: ' + (err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
