// A real Connect / gRPC-Web client (connect-es on code from protoc-gen-es) calling the demo
// through the gateway. Usage: node client.mjs <gateway base URL> <generated code dir>
// Prints one JSON object: what each transport got back. tests/protocols/test_node_client.py.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [baseUrl, generated] = process.argv.slice(2);
const load = (file) => import(pathToFileURL(path.join(generated, file)).href);
const { Users } = await load("users/v1/users_pb.js");
const { Orders } = await load("orders/v1/orders_pb.js");

const transports = {
  "connect-json": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "connect-proto-get": createConnectTransport({
    baseUrl, httpVersion: "1.1", useBinaryFormat: true, useHttpGet: true }),
  "grpc-web-proto": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
  "grpc-web-json": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

const results = {};
for (const [name, transport] of Object.entries(transports)) {
  const users = createClient(Users, transport);
  const orders = createClient(Orders, transport);
  const out = {};
  const user = await users.getUser({ id: "u-1001" }, { timeoutMs: 5000 });
  out.email = user.email;
  out.listed = (await users.listUsers({ pageSize: 3 })).users.map((u) => u.id);
  try {
    await users.getUser({ id: "u-404" });
    out.missing = "no error";
  } catch (err) {
    const e = ConnectError.from(err);
    out.missing = Code[e.code];
    out.missingMessage = e.rawMessage;
  }
  const abort = new AbortController();
  out.watched = [];
  try {
    for await (const event of orders.watchOrders({ userId: "u-1001" }, { signal: abort.signal })) {
      out.watched.push(event.order.id);
      if (out.watched.length === 4) abort.abort(); // the feed then waits for new orders
    }
  } catch (err) {
    if (ConnectError.from(err).code !== Code.Canceled) throw err;
  }
  results[name] = out;
}
console.log(JSON.stringify(results));
