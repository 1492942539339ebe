// Validates rendered Kubernetes manifests and the Prometheus configuration (deploy/validate.sh
// renders the kustomizations and calls this). Arguments:
//   k8s:LABEL:FILE      a multi-document YAML file of Kubernetes objects (LABEL names it)
//   prometheus:FILE     a Prometheus configuration file (structure only; promtool does more)
// Every object is checked three ways:
//   1. its apiVersion/kind is a known Kubernetes (or prometheus-operator) model;
//   2. the model's JSON schema (kubernetes-models, @kubernetes-models/prometheus-operator: the
//      official OpenAPI schemas compiled with ajv): types, required fields, enums, formats;
//   3. no unknown fields, for built-in kinds: those schemas allow extra properties (as the API
//      server's non-strict decoding does), so every field is looked up in the attribute maps of
//      @kubernetes/client-node's generated models, which list each type's fields.
// Prints one line per problem naming the file (kustomize's origin annotation) and the field;
// exits 1 when there is any.
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import YAML from 'yaml';
// The generated models only: the package's index pulls in an HTTP client that needs Node 22.
import * as clientNode from '@kubernetes/client-node/dist/gen/models/all.js';

const ORIGIN = 'config.kubernetes.io/origin';
const problems = [];

function modelModule(apiVersion) {
  if (apiVersion === 'monitoring.coreos.com/v1') {
    return '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
  }
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) {
    return null;
  }
  return `kubernetes-models/${apiVersion}`;
}

async function modelClass(apiVersion, kind) {
  const path = modelModule(apiVersion);
  if (path === null) return null;
  try {
    const mod = await import(path);
    return typeof mod[kind] === 'function' ? mod[kind] : null;
  } catch (e) {
    if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return null;
    throw e;
  }
}

// "spec.template.spec.containers[0].ports[0].containerPort" from ajv's "/spec/template/...".
function fieldPath(pointer) {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^[0-9]+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function ajvMessage(err) {
  const where = fieldPath(err.instancePath) || '(the object)';
  switch (err.keyword) {
    case 'required':
      return `${where}: missing required field "${err.params.missingProperty}"`;
    case 'type':
      return `${where}: must be ${err.params.type}`;
    case 'enum':
      return `${where}: must be one of ${JSON.stringify(err.params.allowedValues)}`;
    default:
      return `${where}: ${err.message ?? err.keyword} ${JSON.stringify(err.params)}`;
  }
}

// Unknown fields, walking the object along @kubernetes/client-node's attribute type maps.
function unknownFields(value, type, path, out) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, m[1], `${path}[${i}]`, out));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) unknownFields(v, m[1], `${path}.${k}`, out);
    }
    return;
  }
  const cls = clientNode[type];
  if (typeof cls !== 'function' || typeof cls.getAttributeTypeMap !== 'function') return;
  if (typeof value !== 'object' || Array.isArray(value)) return; // the schema check reports it
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const at = path ? `${path}.${k}` : k;
    if (!attrs.has(k)) out.push(`${at}: unknown field "${k}"${suggest(k, [...attrs.keys()])}`);
    else unknownFields(v, attrs.get(k), at, out);
  }
}

function suggest(name, known) {
  const d = (a, b) => {
    const m = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) m[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        m[i][j] = Math.min(m[i - 1][j] + 1, m[i][j - 1] + 1, m[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    return m[a.length][b.length];
  };
  const best = known.map((k) => [d(name.toLowerCase(), k.toLowerCase()), k]).sort((a, b) => a[0] - b[0])[0];
  return best && best[0] <= 2 ? ` (did you mean "${best[1]}"?)` : '';
}

function clientNodeType(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

// kustomize's origin annotation gives the source file relative to the kustomization that rendered
// FILE (validate.sh renders into that directory); print it relative to the repository.
const REPO = process.env.VALIDATE_REPO_ROOT ?? process.cwd();

async function checkObject(label, obj, index, renderDir) {
  const meta = obj?.metadata ?? {};
  const origin = meta.annotations?.[ORIGIN];
  let source = label;
  if (origin) {
    const o = YAML.parse(origin);
    // The file that defines the object; an overlay's patches may have changed it since.
    if (o?.path) source = `${relative(REPO, resolve(renderDir, o.path))} (as ${label} renders it)`;
    delete meta.annotations[ORIGIN];
    if (Object.keys(meta.annotations).length === 0) delete meta.annotations;
  }
  const what = `${obj?.kind ?? '?'}/${meta.name ?? `#${index}`}`;
  const report = (msg) => problems.push(`${source}: ${what}: ${msg}`);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    report('not a YAML mapping');
    return;
  }
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') {
    report('apiVersion and kind are required strings');
    return;
  }
  if (typeof meta.name !== 'string' || meta.name === '') report('metadata.name is required');
  const Model = await modelClass(obj.apiVersion, obj.kind);
  if (Model === null) {
    report(`unknown kind "${obj.kind}" in apiVersion "${obj.apiVersion}" (no schema for it)`);
    return;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    if (Array.isArray(e.errors)) for (const err of e.errors) report(ajvMessage(err));
    else report(`schema validation failed: ${e.message}`);
  }
  const type = clientNodeType(obj.apiVersion, obj.kind);
  if (typeof clientNode[type]?.getAttributeTypeMap === 'function') {
    const out = [];
    unknownFields(obj, type, '', out);
    out.forEach(report);
  }
}

function checkPrometheus(file) {
  const report = (msg) => problems.push(`${relative(REPO, resolve(file))}: ${msg}`);
  let cfg;
  try {
    cfg = YAML.parse(readFileSync(file, 'utf8'), { strict: true, uniqueKeys: true });
  } catch (e) {
    report(`YAML: ${e.message}`);
    return;
  }
  if (cfg === null || typeof cfg !== 'object') return report('not a YAML mapping');
  const top = ['global', 'scrape_configs', 'scrape_config_files', 'rule_files', 'alerting', 'remote_write', 'remote_read', 'storage', 'tracing', 'runtime', 'otlp'];
  for (const k of Object.keys(cfg)) if (!top.includes(k)) report(`unknown top-level key "${k}"`);
  if (!Array.isArray(cfg.scrape_configs) || cfg.scrape_configs.length === 0) return report('scrape_configs: a non-empty list is required');
  const roles = ['node', 'service', 'pod', 'endpoints', 'endpointslice', 'ingress'];
  const actions = ['replace', 'keep', 'drop', 'keepequal', 'dropequal', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase'];
  const names = new Set();
  cfg.scrape_configs.forEach((sc, i) => {
    const at = `scrape_configs[${i}]`;
    if (typeof sc?.job_name !== 'string' || !sc.job_name) return report(`${at}: job_name is required`);
    if (names.has(sc.job_name)) report(`${at}: duplicate job_name "${sc.job_name}"`);
    names.add(sc.job_name);
    (sc.kubernetes_sd_configs ?? []).forEach((sd, j) => {
      if (!roles.includes(sd?.role)) report(`${at}.kubernetes_sd_configs[${j}].role: must be one of ${roles.join(', ')}`);
    });
    (sc.relabel_configs ?? []).forEach((rc, j) => {
      const rat = `${at}.relabel_configs[${j}]`;
      const action = rc.action ?? 'replace';
      if (!actions.includes(action)) report(`${rat}.action: unknown action "${action}"`);
      if (rc.source_labels !== undefined && !Array.isArray(rc.source_labels)) report(`${rat}.source_labels: must be a list`);
      if (rc.regex !== undefined) {
        if (/\\[1-9]/.test(String(rc.regex))) report(`${rat}.regex: back-references are not supported (RE2)`);
        try {
          new RegExp(`^(?:${rc.regex})$`);
        } catch (e) {
          report(`${rat}.regex: ${e.message}`);
        }
      }
      if (action === 'replace' && rc.target_label === undefined) report(`${rat}: replace needs target_label`);
    });
  });
}

for (const arg of process.argv.slice(2)) {
  const [kind, ...rest] = arg.split(':');
  if (kind === 'k8s') {
    const file = rest.slice(1).join(':');
    const label = rest[0];
    let docs;
    try {
      docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
    } catch (e) {
      problems.push(`${label}: cannot read ${file}: ${e.message}`);
      continue;
    }
    let i = 0;
    for (const doc of docs) {
      if (doc.errors.length) {
        problems.push(`${label}: YAML: ${doc.errors[0].message}`);
        continue;
      }
      const obj = doc.toJS();
      if (obj !== null) await checkObject(label, obj, i++, dirname(resolve(file)));
    }
    console.error(`  ${label}: ${i} objects`);
  } else if (kind === 'prometheus') {
    checkPrometheus(rest.join(':'));
  } else {
    console.error(`validate.mjs: unknown argument ${arg}`);
    process.exit(2);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`INVALID ${p}`);
  process.exit(1);
}
