// Harness self-test script: prints events, answers stdin commands, and can
// hang (with a child of its own) so the test checks the process-group kill.
'use strict';
const readline = require('readline');
const { spawn } = require('child_process');
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
console.error('harness: stderr line');
console.log('not an event');
emit({ event: 'ready', pid: process.pid, value: process.env.HARNESS_VALUE || '' });
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'echo') emit({ event: 'echo', text: cmd.text });
  if (cmd.cmd === 'fail') emit({ event: 'error', message: 'asked to fail' });
  if (cmd.cmd === 'hang') {
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    emit({ event: 'hanging', child: child.pid });
    setInterval(() => {}, 1000);
  }
  if (cmd.cmd === 'exit') process.exit(cmd.code);
});
