import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ReconError, exitCodeFor, oneLine, toReconError } from '../domain/errors';
import { CommandContext } from './context';
import { registerDataCommands } from './commands/data';
import { registerContractCommands } from './commands/contract';
import { registerRunCommands } from './commands/run';
import { registerScheduleCommands } from './commands/schedule';
import { registerOutcomeCommands } from './commands/outcome';
import { registerStackCommands } from './commands/stack';
import { registerDisputeCommands } from './commands/dispute';
import { registerFinanceCommands } from './commands/finance';
import { registerTenantCommands } from './commands/tenant';
import { registerRunViews } from './commands/runs';
import { registerSinkCommands } from './commands/sink';
import { registerEmulateCommands } from './commands/emulate';
import { registerSourceCommands } from './commands/source';
import { registerFleetCommands } from './commands/fleet';
import { registerCellCommands } from './commands/cell';
import { markRequiredOptions } from './format';
import { TenantOpt } from './io';
import { requireTenant } from '../reconcile/tenants';
import { jsonLogLine, jsonLogs } from '../observability/log';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/**
 * Verbs whose --tenant is not looked up before the action: they need Temporal, not the tenant's
 * rows. An unknown tenant fails their workflow at its first activity instead (`unknown_tenant`,
 * non-retryable), or the schedule is not found. `run list` and `run show` read the database, so
 * they are checked like every other verb.
 */
function checkedByWorkflow(path: string[]): boolean {
  return path[0] === 'schedule' || (path[0] === 'run' && path.length === 1);
}

/** Schedule ids are per tenant, not per cell: only `schedule create` needs the cell's task queue. */
function needsNoCell(path: string[]): boolean {
  return path[0] === 'schedule' && path[1] !== 'create';
}

function commandPath(cmd: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names;
}

/**
 * One step for every verb that takes --tenant: route it to the tenant's cell, then refuse an id
 * the cell's database does not know (or that this login may not see, which is the same to it):
 * an error, not an empty success.
 */
async function routeToTenant(ctx: CommandContext, cmd: Command): Promise<void> {
  const tenant = cmd.opts<{ tenant?: unknown }>().tenant;
  // A malformed id is refused by the command's own option check, with its own message.
  if (!TenantOpt.safeParse(tenant).success) return;
  const path = commandPath(cmd);
  if (needsNoCell(path)) return;
  const cell = await ctx.routeToTenant(tenant as string);
  if (checkedByWorkflow(path)) return;
  await ctx.cells().within(cell, (pool) => requireTenant(pool, tenant as string));
}

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('recon')
    .description("Outcome-billing reconciliation: bill only outcomes the customer's own records confirm")
    .version(version, '-V, --version', 'print the version of recon')
    .option('--json', 'print machine-readable JSON')
    // Commander's own two-line error text is replaced by our one line (reportError); help and
    // --version still go where commander sends them. Subcommands inherit both settings.
    .configureOutput({ outputError: () => undefined })
    .configureHelp(markRequiredOptions)
    .exitOverride();
  program.hook('preAction', (_root, actionCommand) => routeToTenant(ctx, actionCommand));
  registerStackCommands(program, ctx);
  registerDataCommands(program, ctx);
  registerContractCommands(program, ctx);
  registerRunCommands(program, ctx);
  registerRunViews(program, ctx);
  registerTenantCommands(program, ctx);
  registerScheduleCommands(program, ctx);
  registerOutcomeCommands(program, ctx);
  registerDisputeCommands(program, ctx);
  registerFinanceCommands(program, ctx);
  registerSinkCommands(program, ctx);
  registerEmulateCommands(program, ctx);
  registerSourceCommands(program, ctx);
  registerFleetCommands(program, ctx);
  registerCellCommands(program, ctx);
  return program;
}

const COMMANDER_CODES: Record<string, string> = {
  'commander.missingMandatoryOptionValue': 'missing_option',
  'commander.optionMissingArgument': 'missing_option',
  'commander.unknownOption': 'unknown_option',
  'commander.unknownCommand': 'unknown_command',
  'commander.missingArgument': 'missing_argument',
  'commander.excessArguments': 'invalid_usage',
  'commander.invalidArgument': 'invalid_usage',
  'commander.conflictingOption': 'invalid_usage',
};

/** Commander's parser errors as ours: "error: required option ..." becomes one catalogue line. */
function fromCommander(err: CommanderError, argv: string[]): ReconError {
  const code = COMMANDER_CODES[err.code] ?? 'invalid_usage';
  const text = err.message
    .replace(/^error:\s*/i, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  // The verb the person typed, for the pointer to its help.
  const verbs = argv
    .slice(2)
    .filter((a) => !a.startsWith('-'))
    .slice(0, 2)
    .join(' ');
  const hint = code === 'unknown_command' || !verbs ? 'see `recon --help`' : `see \`recon ${verbs} --help\``;
  return new ReconError(code, `${text}; ${hint}`);
}

/**
 * Every failure is one line on stderr, `recon: <code>: <message>` (one JSON object with --json),
 * exit 2 for the caller's mistakes and 1 for faults; the stack trace only with RECON_DEBUG.
 * Help and --version are not failures: commander printed them, its exit code stands.
 */
export function reportError(err: unknown, argv: string[]): number {
  if (
    err instanceof CommanderError &&
    (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
  ) {
    return err.exitCode;
  }
  const e = err instanceof CommanderError ? fromCommander(err, argv) : toReconError(err);
  const message = oneLine(e.message);
  if (jsonLogs()) process.stderr.write(jsonLogLine('ERROR', `recon: ${e.code}: ${message}`, { code: e.code }));
  else if (argv.includes('--json')) process.stderr.write(JSON.stringify({ error: { code: e.code, message } }) + '\n');
  else process.stderr.write(`recon: ${e.code}: ${message}\n`);
  if (process.env.RECON_DEBUG) console.error((e as Error & { cause?: unknown }).cause ?? e);
  return exitCodeFor(e.code);
}

export async function main(argv: string[]): Promise<void> {
  const ctx = new CommandContext();
  let exitCode = 0;
  try {
    await buildProgram(ctx).parseAsync(argv);
  } catch (err) {
    exitCode = reportError(err, argv);
  } finally {
    await ctx.close();
  }
  process.exit(exitCode);
}
