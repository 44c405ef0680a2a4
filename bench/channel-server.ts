/**
 * The other end of `npm run bench:channel`: a TLS WebSocket server that answers pods/portforward
 * (v4.channel.k8s.io) and pods/exec (v5/v4) as the kubelet does, in a process of its own so that
 * the client's CPU is measured alone. Port i gets its two channel-opening messages (the port
 * number), each HTTP request a 200 "shutting down" and the socket closes when every port has
 * answered; an exec gets a Success status and a close frame. A REST request (not an upgrade)
 * gets 201 and the Event it posted back, with the API server's headers and resourceVersion.
 * Prints its port on stdout.
 * Run by bench/channel.ts: node bench/channel-server.ts <dir with tls.crt and tls.key>
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const dir = process.argv[2] ?? '.';
const server = createServer({ cert: readFileSync(`${dir}/tls.crt`), key: readFileSync(`${dir}/tls.key`), keepAliveTimeout: 60_000 }, (req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => {
    body += d;
  });
  req.on('end', () => {
    const event = JSON.parse(body || '{}') as { metadata?: Record<string, unknown> };
    const created = {
      ...event,
      metadata: {
        ...event.metadata,
        name: 'p.1872a3c4d5e6f708',
        uid: '5c0a2a3e-8a58-4f7e-9a8e-2f1d6c3b4a59',
        resourceVersion: '123456',
        creationTimestamp: new Date().toISOString(),
      },
    };
    res.writeHead(201, { 'audit-id': '0b9c5e0e-5d3a-4a51-8d4c-1c2b3a4d5e6f', 'cache-control': 'no-cache, private', 'content-type': 'application/json' });
    res.end(JSON.stringify(created));
  });
});
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
