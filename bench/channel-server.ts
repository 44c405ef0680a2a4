/**
 * The other end of `npm run bench:channel`: a TLS WebSocket server that answers pods/portforward
 * (v4.channel.k8s.io) and pods/exec (v5/v4) as the kubelet does, in a process of its own so that
 * the client's CPU is measured alone. Port i gets its two channel-opening messages (the port
 * number), each HTTP request a 200 "shutting down" and the socket closes when every port has
 * answered; an exec gets a Success status and a close frame. Prints its port on stdout.
 * Run by bench/channel.ts: node bench/channel-server.ts <dir with tls.crt and tls.key>
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const dir = process.argv[2] ?? '.';
const server = createServer({ cert: readFileSync(`${dir}/tls.crt`), key: readFileSync(`${dir}/tls.key`) });
const wss = new WebSocketServer({ server, perMessageDeflate: false, handleProtocols: (offered) => [...offered][0] ?? false });
wss.on('connection', (ws, req) => {
  const url = new URL(req.url ?? '/', 'https://bench');
  if (url.pathname.endsWith('/exec')) {
    ws.send(Buffer.from('\x03{"metadata":{},"status":"Success"}'));
    ws.close(1000);
    return;
  }
  const ports = (url.searchParams.get('ports') ?? '').split(',').map(Number);
  ports.forEach((port, i) => {
    const prefix = Buffer.of(port & 255, port >> 8);
    ws.send(Buffer.concat([Buffer.of(2 * i), prefix]));
    ws.send(Buffer.concat([Buffer.of(2 * i + 1), prefix]));
  });
  const requests = ports.map(() => '');
  let open = ports.length;
  ws.on('message', (data: Buffer) => {
    const channel = data[0] ?? 1;
    const i = channel >> 1;
    requests[i] += data.subarray(1).toString('latin1');
    if (!requests[i]?.includes('\r\n\r\n')) return;
    const body = 'shutting down';
    ws.send(
      Buffer.concat([
        Buffer.of(channel),
        Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`),
      ]),
    );
    requests[i] = '';
    open -= 1;
    if (open === 0) ws.close(1000);
  });
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
