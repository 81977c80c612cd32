// The official Azure IoT Node service SDK (azure-iothub), unchanged, against
// the emulator's service REST API; driven by interop/service_node_test.go.
// Environment:
//   HUB_CS         the iothubowner connection string (HostName=localhost;…); the SDK
//                  always dials {HostName}:443, and trusts the CA of NODE_EXTRA_CA_CERTS
//   WRONG_CS       the same policy with a wrong key
//   METHOD_DEVICE  a device the Go test has connected (with hubwire's device client)
//                  answering the direct method "echo" with status 200 and its payload
// Prints one JSON object per line for each step ({"event": …}); on failure an
// "error" event and exit status 1.
'use strict';

const { Registry, Client } = require('azure-iothub');

const emit = (event, fields) => process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
const errName = (err) => (err && err.constructor ? err.constructor.name : String(err));

// expectError runs fn and returns the class name of the error it throws.
async function expectError(fn) {
  try {
    await fn();
  } catch (err) {
    return { name: errName(err), status: err.response ? err.response.statusCode : 0, message: String(err.message) };
  }
  throw new Error('no error');
}

async function main() {
  const registry = Registry.fromConnectionString(process.env.HUB_CS);
  const id = 'node-svc-1';

  // Registry.create with no keys: the SDK sends "" keys, the hub generates them.
  const created = (await registry.create({ deviceId: id })).responseBody;
  emit('created', {
    deviceId: created.deviceId,
    generationId: created.generationId,
    etag: created.etag,
    primaryKey: created.authentication.symmetricKey.primaryKey,
    secondaryKey: created.authentication.symmetricKey.secondaryKey,
    status: created.status,
  });

  const got = (await registry.get(id)).responseBody;
  emit('got', { deviceId: got.deviceId, etag: got.etag, primaryKey: got.authentication.symmetricKey.primaryKey });

  const listed = (await registry.list()).responseBody;
  emit('listed', { ids: listed.map((d) => d.deviceId).sort() });

  // getTwin, then Twin.update of tags and desired properties.
  const twin = (await registry.getTwin(id)).responseBody;
  emit('twin', { deviceId: twin.deviceId, etag: twin.etag, desiredVersion: twin.properties.desired.$version });
  const staleEtag = twin.etag;
  const updated = (await twin.update({ tags: { region: 'US', floor: 3 }, properties: { desired: { interval: 30 } } })).result;
  emit('twin_updated', { etag: updated.etag, tags: updated.tags, interval: updated.properties.desired.interval, desiredVersion: updated.properties.desired.$version });

  // updateTwin with the etag read before the update: InvalidEtagError.
  const stale = await expectError(() => registry.updateTwin(id, { tags: { region: 'EU' } }, staleEtag));
  emit('stale_etag', stale);
  const fresh = (await registry.updateTwin(id, { tags: { owner: 'node' } }, updated.etag)).responseBody;
  emit('twin_updated_again', { tags: fresh.tags });

  // createQuery(...).nextAsTwin(), one twin a page.
  const query = registry.createQuery("SELECT * FROM devices WHERE tags.region = 'US'", 1);
  const ids = [];
  let pages = 0;
  while (query.hasMoreResults && pages < 10) {
    const page = (await query.nextAsTwin()).result;
    pages++;
    for (const t of page) ids.push(t.deviceId);
  }
  emit('queried', { ids, pages });
  const all = registry.createQuery('SELECT * FROM devices', 1);
  const allIds = [];
  let allPages = 0;
  while (all.hasMoreResults && allPages < 10) {
    const page = (await all.nextAsTwin()).result;
    allPages++;
    for (const t of page) allIds.push(t.deviceId);
  }
  emit('queried_all', { ids: allIds, pages: allPages });
  const count = (await registry.createQuery('SELECT COUNT() AS n FROM devices').next()).result;
  emit('counted', { result: count });

  // Client.invokeDeviceMethod to a device connected with hubwire's client.
  const client = Client.fromConnectionString(process.env.HUB_CS);
  const res = (await client.invokeDeviceMethod(process.env.METHOD_DEVICE, { methodName: 'echo', payload: { a: 1 }, responseTimeoutInSeconds: 10 })).result;
  emit('invoked', { status: res.status, payload: res.payload });

  // Unknown id: DeviceNotFoundError.
  emit('not_found', await expectError(() => registry.get('no-such-device')));

  // delete: 204.
  const del = await registry.delete(id);
  emit('deleted', { statusCode: del.httpResponse.statusCode });
  emit('deleted_get', await expectError(() => registry.get(id)));

  // A wrong policy key is refused.
  const wrong = Registry.fromConnectionString(process.env.WRONG_CS);
  emit('refused', await expectError(() => wrong.get(process.env.METHOD_DEVICE)));

  // Registry.update (If-Match "*"), statistics.
  const holder = (await registry.get(process.env.METHOD_DEVICE)).responseBody;
  holder.status = 'enabled';
  holder.statusReason = 'updated by node';
  const upd = (await registry.update(holder)).responseBody;
  emit('device_updated', { statusReason: upd.statusReason, etag: upd.etag });
  const stats = (await registry.getRegistryStatistics()).responseBody;
  emit('statistics', stats);

  // Modules: addModule, getModule, getModulesOnDevice, module twins, updateModule, removeModule.
  const mod = (await registry.addModule({ deviceId: process.env.METHOD_DEVICE, moduleId: 'node-mod' })).responseBody;
  emit('module_added', { moduleId: mod.moduleId, deviceId: mod.deviceId, primaryKey: mod.authentication.symmetricKey.primaryKey });
  const gotMod = (await registry.getModule(process.env.METHOD_DEVICE, 'node-mod')).responseBody;
  const mods = (await registry.getModulesOnDevice(process.env.METHOD_DEVICE)).responseBody;
  emit('modules', { got: gotMod.moduleId, ids: mods.map((m) => m.moduleId) });
  const mtwin = (await registry.getModuleTwin(process.env.METHOD_DEVICE, 'node-mod')).responseBody;
  const mtwin2 = (await mtwin.update({ tags: { kind: 'module' } })).result;
  emit('module_twin', { moduleId: mtwin.moduleId, tags: mtwin2.tags });
  gotMod.managedBy = 'node';
  const updMod = (await registry.updateModule(gotMod, true)).responseBody;
  emit('module_updated', { managedBy: updMod.managedBy });
  emit('module_duplicate', await expectError(() => registry.addModule({ deviceId: process.env.METHOD_DEVICE, moduleId: 'node-mod' })));
  const rm = await registry.removeModule(process.env.METHOD_DEVICE, 'node-mod');
  emit('module_removed', { statusCode: rm.httpResponse.statusCode });

  // Bulk: addDevices, then removeDevices.
  const added = (await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }])).responseBody;
  emit('bulk_added', { isSuccessful: added.isSuccessful, errors: added.errors });
  const removed = (await registry.removeDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }], true)).responseBody;
  emit('bulk_removed', { isSuccessful: removed.isSuccessful, errors: removed.errors });

  emit('done');
}

main().catch((err) => {
  emit('error', { name: errName(err), message: String(err && err.message ? err.message : err), stack: String(err && err.stack) });
  process.exit(1);
});
