// Must NOT compile: the generated types know the contract (email is a string, required).
import type { paths } from "./api";

type NewUser = paths["/v1/users"]["post"]["requestBody"]["content"]["application/json"];

export const wrongType: NewUser = { email: 42 };
export const missingEmail: NewUser = { displayName: "No Mail" };
