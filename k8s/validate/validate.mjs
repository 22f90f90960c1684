// Validates rendered Kubernetes manifests (multi-document YAML files, or standard input) against
// the Kubernetes OpenAPI schemas compiled into the kubernetes-models package: types, required
// fields, enums and formats (quantities, int32 ports). Works offline. Exits 1 naming every
// document and field at fault.
//
//   node k8s/validate/validate.mjs rendered.yaml [more.yaml ...]
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";


async function modelFor(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const path = group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
  try {
    const module = await import(path);
    return module[kind];
  } catch (e) {
    return null;
  }
}

const inputs = process.argv.slice(2);
const sources = inputs.length === 0 ? [["<stdin>", readFileSync(0, "utf8")]] : inputs.map((f) => [f, readFileSync(f, "utf8")]);
let failures = 0;
let checked = 0;
for (const [name, text] of sources) {
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      console.error(`${name}: YAML error: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const object = doc.toJS();
    if (object === null || object === undefined) {
      continue;
    }
    const where = `${name}: ${object.kind ?? "?"}/${object.metadata?.name ?? "?"}`;
    if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
      console.error(`${where}: apiVersion and kind are required`);
      failures++;
      continue;
    }
    const Model = await modelFor(object.apiVersion, object.kind);
    if (!Model) {
      console.error(`${where}: ${object.apiVersion} ${object.kind} is not a Kubernetes API kind known to the schemas`);
      failures++;
      continue;
    }
    try {
      new Model(object).validate();
      checked++;
    } catch (e) {
      console.error(`${where}: ${e.message}`);
      failures++;
    }
  }
}
console.log(`${checked} manifests valid, ${failures} invalid`);
process.exit(failures === 0 && checked > 0 ? 0 : 1);
