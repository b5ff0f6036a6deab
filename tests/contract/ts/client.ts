// A typed client of the demo, its types generated from /openapi.json by openapi-typescript
// (tests/contract/test_typescript.py writes api.d.ts next to this file, then runs tsc).
import type { components, paths } from "./api";

declare const process: { argv: string[]; exitCode: number };

type User = components["schemas"]["users.v1.User"];
type NewUser = paths["/v1/users"]["post"]["requestBody"]["content"]["application/json"];
type Created = paths["/v1/users"]["post"]["responses"]["201"]["content"]["application/json"];
type Status = components["schemas"]["google.rpc.Status"];
type Listed = paths["/v1/users"]["get"]["responses"]["200"]["content"]["application/json"];
type ListQuery = NonNullable<paths["/v1/users"]["get"]["parameters"]["query"]>;

async function call<T>(url: string, init?: RequestInit): Promise<[number, T]> {
  const response = await fetch(url, init);
  return [response.status, (await response.json()) as T];
}

async function main(): Promise<void> {
  const [base, token] = process.argv.slice(2);
  const [, ada] = await call<User>(`${base}/v1/users/u-1001`);
  const query: ListQuery = { pageSize: 2, filter: "role=ADMIN" };
  const [, page] = await call<Listed>(
    `${base}/v1/users?pageSize=${query.pageSize}&filter=${query.filter}`);
  const body: NewUser = { email: "typed@example.com", displayName: "Typed Client" };
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const [created, user] = await call<Created>(`${base}/v1/users`, {
    method: "POST", headers, body: JSON.stringify(body),
  });
  const missing: Partial<NewUser> = { displayName: "No Mail" };
  const [refused, error] = await call<Status>(`${base}/v1/users`, {
    method: "POST", headers, body: JSON.stringify(missing),
  });
  const fields = (error.details ?? []).flatMap(
    (detail) => (detail["fieldViolations"] as { field: string }[] | undefined) ?? []);
  console.log(JSON.stringify({
    email: ada.email,
    listed: (page.users ?? []).map((u) => u.id),
    created, createdEmail: user.email,
    refused, code: error.code, fields: fields.map((f) => f.field),
  }));
}

main().catch((failure: unknown) => { console.error(failure); process.exitCode = 1; });
