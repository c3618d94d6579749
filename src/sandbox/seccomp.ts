import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { isGvisor } from './docker-options.ts';

/**
 * The sandbox's own seccomp profile (config/seccomp.json, Docker's JSON format, derived from Docker
 * 20.10's default allow-list). Loaded and checked once at start-up; the engine passes
 * `SecurityOpt: [securityOpt]` to every sandbox container: the Docker API takes the profile's text
 * (`seccomp=<JSON>`), not a file name as the CLI does.
 *
 * The checks make a profile that would quietly weaken the sandbox a start-up error naming the file and the
 * syscall: a default action that allows or kills, a required-denied call in an allow rule, a conditional
 * call (clone, prlimit64, personality, socket) allowed beyond its safe arguments, any action that kills.
 */

/** Always denied: no allow rule may name them, whatever its conditions (a capability, an arch). */
export const REQUIRED_DENIED = [
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'userfaultfd',
  'perf_event_open',
  'bpf',
  'keyctl',
  'add_key',
  'request_key',
  'unshare',
  'clone3',
  'setns',
  'mount',
  'umount2',
  'pivot_root',
  'fsopen',
  'fsmount',
  'move_mount',
  'open_tree',
  'kexec_load',
  'kexec_file_load',
  'open_by_handle_at',
  'init_module',
  'finit_module',
  'delete_module',
  'process_vm_readv',
  'process_vm_writev',
  'pidfd_getfd',
] as const;

/** clone(2) flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET). */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;
/** personality(2) values that change nothing that matters: PER_LINUX, PER_LINUX32, UNAME26 (|PER_LINUX32), the query. */
export const HARMLESS_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] as const;
/** socket(2) families a program without network needs: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK. */
export const SOCKET_FAMILIES = [1, 2, 10, 16] as const;

/** Errno numbers the profile may answer with. */
export const EPERM = 1;
export const ENOSYS = 38;

const COMPARISONS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);
const ACTIONS = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG', 'SCMP_ACT_TRAP', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_NOTIFY']);
/** Actions that let the call reach the kernel. */
const LETS_THROUGH = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE', 'SCMP_ACT_NOTIFY']);
/** Actions that end the program instead of failing the call: a denied call must only fail. */
const KILLS = new Set(['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP']);

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args: SeccompArg[];
  includes: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes: { caps?: string[]; arches?: string[]; minKernel?: string };
}

export interface SeccompProfile {
  /** The path it was read from, as given. */
  file: string;
  defaultAction: string;
  rules: SeccompRule[];
  /** `seccomp=<the profile as compact JSON, comments stripped>`: the HostConfig.SecurityOpt entry. */
  securityOpt: string;
  /** The same under gVisor (GVISOR_ANSWERS_ENOSYS). */
  gvisorSecurityOpt: string;
}

/**
 * gVisor (runsc --oci-seccomp, Debian's 2022 build) answers EPERM for every errno action: it ignores
 * `errnoRet`. glibc falls back from clone3 to clone only on ENOSYS (with EPERM no thread starts), so under
 * gVisor clone3 is let through to gVisor's kernel, which has no clone3 and answers ENOSYS itself
 * (measured; a later gVisor that has it creates namespaces of its own kernel, not the host's). Every other
 * denied call stays denied, with EPERM.
 */
const GVISOR_ANSWERS_ENOSYS = new Set(['clone3']);

/** The HostConfig.SecurityOpt entry for sandboxes run by `ociRuntime`. */
export function securityOptFor(profile: SeccompProfile, ociRuntime: string | undefined): string {
  return isGvisor(ociRuntime) ? profile.gvisorSecurityOpt : profile.securityOpt;
}

function forGvisor(raw: Record<string, unknown>): Record<string, unknown> {
  const rules = (raw.syscalls as { names: string[]; errnoRet?: number }[]).flatMap((rule) => {
    if (rule.errnoRet !== ENOSYS) return [rule];
    const names = rule.names.filter((name) => !GVISOR_ANSWERS_ENOSYS.has(name));
    return names.length > 0 ? [{ ...rule, names }] : [];
  });
  const letThrough = { names: [...GVISOR_ANSWERS_ENOSYS], action: 'SCMP_ACT_ALLOW', args: [], includes: {}, excludes: {} };
  return { ...raw, syscalls: [...rules, letThrough] };
}

export class SeccompProfileError extends ConfigError {
  constructor(file: string, problem: string) {
    super(`seccomp profile ${file}: ${problem}`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function parseRule(raw: unknown, where: string, fail: (problem: string) => never): SeccompRule {
  if (!isObject(raw)) fail(`${where} is not an object`);
  let names: string[];
  if (raw.name !== undefined && raw.names !== undefined) fail(`${where} has both "name" and "names" (Docker refuses that)`);
  if (typeof raw.name === 'string') names = [raw.name];
  else if (Array.isArray(raw.names) && raw.names.length > 0 && raw.names.every((n) => typeof n === 'string' && /^[a-z0-9_]+$/.test(n))) names = raw.names as string[];
  else fail(`${where} needs "names": a non-empty list of syscall names`);
  const action = raw.action;
  if (typeof action !== 'string' || !ACTIONS.has(action)) fail(`${where} (${names.join(', ')}): unknown action ${JSON.stringify(action)}`);
  if (KILLS.has(action)) fail(`${where} (${names.join(', ')}): action ${action} would end the program; a denied call must fail with an errno (SCMP_ACT_ERRNO)`);
  let errnoRet: number | undefined;
  if (raw.errnoRet !== undefined) {
    if (!Number.isInteger(raw.errnoRet) || (raw.errnoRet as number) < 1 || (raw.errnoRet as number) > 4095) fail(`${where} (${names.join(', ')}): errnoRet must be an errno number`);
    errnoRet = raw.errnoRet as number;
  }
  const args: SeccompArg[] = [];
  if (raw.args !== undefined && raw.args !== null) {
    if (!Array.isArray(raw.args)) fail(`${where} (${names.join(', ')}): "args" must be a list`);
    for (const [i, arg] of raw.args.entries()) {
      const at = `${where}.args[${i}] (${names.join(', ')})`;
      if (!isObject(arg)) fail(`${at} is not an object`);
      if (!Number.isInteger(arg.index) || (arg.index as number) < 0 || (arg.index as number) > 5) fail(`${at}: index must be 0-5`);
      if (!Number.isInteger(arg.value) || (arg.value as number) < 0) fail(`${at}: value must be a non-negative integer`);
      if (arg.valueTwo !== undefined && (!Number.isInteger(arg.valueTwo) || (arg.valueTwo as number) < 0)) fail(`${at}: valueTwo must be a non-negative integer`);
      if (typeof arg.op !== 'string' || !COMPARISONS.has(arg.op)) fail(`${at}: unknown op ${JSON.stringify(arg.op)}`);
      args.push({ index: arg.index as number, value: arg.value as number, ...(arg.valueTwo !== undefined ? { valueTwo: arg.valueTwo as number } : {}), op: arg.op });
    }
  }
  const filter = (value: unknown, key: string) => {
    if (value === undefined || value === null) return {};
    if (!isObject(value)) fail(`${where} (${names.join(', ')}): "${key}" must be an object`);
    return value as SeccompRule['includes'];
  };
  return { names, action, ...(errnoRet !== undefined ? { errnoRet } : {}), args, includes: filter(raw.includes, 'includes'), excludes: filter(raw.excludes, 'excludes') };
}

/** The allow rules naming `syscall` (any condition: args, caps, arches, kernel version). */
function allowRules(rules: SeccompRule[], syscall: string): SeccompRule[] {
  return rules.filter((rule) => LETS_THROUGH.has(rule.action) && rule.names.includes(syscall));
}

/** Checks a parsed profile; throws SeccompProfileError naming the file and the syscall. */
export function checkProfile(file: string, raw: unknown): { defaultAction: string; rules: SeccompRule[] } {
  const fail = (problem: string): never => {
    throw new SeccompProfileError(file, problem);
  };
  if (!isObject(raw)) return fail('not a JSON object');
  const defaultAction = raw.defaultAction;
  if (defaultAction !== 'SCMP_ACT_ERRNO') {
    fail(`defaultAction is ${JSON.stringify(defaultAction)}; it must be SCMP_ACT_ERRNO (a call nobody allowed fails with EPERM, it neither succeeds nor kills)`);
  }
  if (raw.architectures !== undefined && raw.archMap !== undefined) fail('has both "architectures" and "archMap" (Docker refuses that)');
  if (!Array.isArray(raw.syscalls) || raw.syscalls.length === 0) fail('"syscalls" must be a non-empty list');
  const rules = (raw.syscalls as unknown[]).map((rule, i) => parseRule(rule, `syscalls[${i}]`, fail));

  for (const syscall of REQUIRED_DENIED) {
    const allowed = allowRules(rules, syscall);
    if (allowed.length > 0) {
      const at = rules.indexOf(allowed[0]!);
      const how = allowed[0]!.args.length > 0 ? 'conditionally' : 'unconditionally';
      fail(`${syscall} must be denied, but syscalls[${at}] allows it ${how} (${allowed[0]!.action})`);
    }
  }

  // Allowed only with safe arguments: every rule that lets the call through must carry the condition.
  const conditional: { syscall: string; safe: (rule: SeccompRule) => boolean; why: string }[] = [
    {
      syscall: 'clone',
      safe: (rule) => rule.args.some((a) => a.op === 'SCMP_CMP_MASKED_EQ' && (a.value & CLONE_NAMESPACE_FLAGS) === CLONE_NAMESPACE_FLAGS && (a.valueTwo ?? 0) === 0),
      why: `only without namespace flags (args: SCMP_CMP_MASKED_EQ 0x${CLONE_NAMESPACE_FLAGS.toString(16)} == 0)`,
    },
    {
      syscall: 'prlimit64',
      safe: (rule) => rule.args.some((a) => a.index === 0 && a.op === 'SCMP_CMP_EQ' && a.value === 0),
      why: 'only on the caller itself (args: index 0 SCMP_CMP_EQ 0)',
    },
    {
      syscall: 'personality',
      safe: (rule) => rule.args.some((a) => a.index === 0 && a.op === 'SCMP_CMP_EQ' && (HARMLESS_PERSONALITIES as readonly number[]).includes(a.value)),
      why: `only with a harmless persona (args: index 0 SCMP_CMP_EQ one of ${HARMLESS_PERSONALITIES.map((v) => `0x${v.toString(16)}`).join(', ')})`,
    },
    {
      syscall: 'socket',
      safe: (rule) => rule.args.some((a) => a.index === 0 && a.op === 'SCMP_CMP_EQ' && (SOCKET_FAMILIES as readonly number[]).includes(a.value)),
      why: `only for the families ${SOCKET_FAMILIES.join(', ')} (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK)`,
    },
  ];
  for (const { syscall, safe, why } of conditional) {
    for (const rule of allowRules(rules, syscall)) {
      if (!safe(rule)) fail(`${syscall} may be allowed ${why}, but syscalls[${rules.indexOf(rule)}] allows it ${rule.args.length ? 'with other arguments' : 'unconditionally'}`);
    }
  }
  // socketcall would hide socket()'s family from the check above.
  for (const syscall of ['socketcall']) {
    const allowed = allowRules(rules, syscall);
    if (allowed.length > 0) fail(`${syscall} must be denied (it hides socket()'s family from seccomp), but syscalls[${rules.indexOf(allowed[0]!)}] allows it`);
  }
  return { defaultAction: defaultAction as string, rules };
}

/** Drops what Docker ignores anyway (fields starting with "_", rule comments), without a byte of whitespace. */
function compact(raw: Record<string, unknown>): string {
  return JSON.stringify(raw, (key, value: unknown) => (key.startsWith('_') || key === 'comment' ? undefined : value));
}

/** Reads, parses and checks the profile; the error names the file (and the syscall) on every failure. */
export function loadSeccompProfile(file: string): SeccompProfile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new SeccompProfileError(file, `cannot read it: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new SeccompProfileError(file, `not valid JSON: ${(error as Error).message}`);
  }
  const { defaultAction, rules } = checkProfile(file, raw);
  const profile = raw as Record<string, unknown>;
  return {
    file,
    defaultAction,
    rules,
    securityOpt: `seccomp=${compact(profile)}`,
    gvisorSecurityOpt: `seccomp=${compact(forGvisor(profile))}`,
  };
}
