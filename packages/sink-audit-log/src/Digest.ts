/**
 * Signed digests: proof that a person can check that nothing the audit log held was
 * removed or rewritten since (in the manner of CloudTrail's log file integrity
 * validation).
 *
 * Now and then (and at shutdown) the sink signs the store's head with an Ed25519 key
 * and writes it to a folder of its own, one file per digest. Each digest names the
 * hash of the one before it, so the digests form a chain too. Retention writes a
 * digest of kind `retention` saying what it removed (the records up to the new anchor),
 * so a retention cut stays provable.
 *
 * A digest file is JSON: the body (below) and `signature`, base64 Ed25519 over the
 * canonical JSON of the body. Its hash (what the next one's `previous` names) is the
 * SHA-256 hex of the canonical JSON of the whole file (body and signature).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Chain from "./Chain.ts"
import type { ChainState } from "./Store.ts"

export interface DigestBody {
  readonly format: "workos-relay-audit-digest"
  readonly version: 1
  /** 1, 2, 3, ...: the file's place in the digest chain. */
  readonly n: number
  /** `head`: the store's head at `time`; `retention`: records up to `anchor` were removed. */
  readonly kind: "head" | "retention"
  /** When the digest was made (ISO-8601). */
  readonly time: string
  readonly anchor: Chain.Anchor
  readonly seq: number
  readonly hash: string
  readonly count: number
  /** Retention only: how many records it removed, and where the chain started before. */
  readonly removed?: { readonly count: number; readonly from: Chain.Anchor }
  /** The hash of digest n-1; null for the first. */
  readonly previous: string | null
}

export interface Digest extends DigestBody {
  readonly signature: string
}

/** A new Ed25519 key pair, as PEM (PKCS#8 private, SPKI public). */
export const generateKeyPair = (): { readonly privateKey: string; readonly publicKey: string } => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519")
  return {
    privateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: publicKey.export({ format: "pem", type: "spki" }).toString()
  }
}

/** An Ed25519 private key from PEM; throws saying what is wrong. */
export const privateKeyFrom = (pem: string): crypto.KeyObject => {
  let key: crypto.KeyObject
  try {
    key = crypto.createPrivateKey(pem)
  } catch (e) {
    throw new Error(`not a PEM private key (${(e as Error).message})`)
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new Error(`an Ed25519 key is needed, got a ${key.asymmetricKeyType ?? "unknown"} key`)
  }
  return key
}

/** An Ed25519 public key from PEM (or from its private key's PEM); throws saying what is wrong. */
export const publicKeyFrom = (pem: string): crypto.KeyObject => {
  let key: crypto.KeyObject
  try {
    key = crypto.createPublicKey(pem)
  } catch (e) {
    throw new Error(`not a PEM public key (${(e as Error).message})`)
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new Error(`an Ed25519 key is needed, got a ${key.asymmetricKeyType ?? "unknown"} key`)
  }
  return key
}

/** The public key of a private key, as PEM. */
export const publicKeyPem = (privateKey: crypto.KeyObject): string =>
  crypto.createPublicKey(privateKey).export({ format: "pem", type: "spki" }).toString()

export const digestHash = (digest: Digest): string =>
  crypto.hash("sha256", Chain.canonicalJson(digest), "hex")

const fileName = (n: number): string => `digest-${String(n).padStart(10, "0")}.json`
const digestFile = /^digest-(\d{10})\.json$/

export const sign = (body: DigestBody, key: crypto.KeyObject): Digest => ({
  ...body,
  signature: crypto.sign(null, Buffer.from(Chain.canonicalJson(body)), key).toString("base64")
})

export const signatureHolds = (digest: Digest, key: crypto.KeyObject): boolean => {
  const { signature, ...body } = digest
  try {
    return crypto.verify(
      null,
      Buffer.from(Chain.canonicalJson(body)),
      key,
      Buffer.from(signature, "base64")
    )
  } catch {
    return false
  }
}

/** The digests in a folder, in order (files that are not digests are left alone). */
export const readAll = (directory: string): ReadonlyArray<{ file: string; digest: Digest }> =>
  fs
    .readdirSync(directory)
    .filter((name) => digestFile.test(name))
    .sort()
    .map((name) => {
      const file = path.join(directory, name)
      return { file, digest: JSON.parse(fs.readFileSync(file, "utf8")) as Digest }
    })

/**
 * Writes digests to a folder. The last one is read back at start, so that a restarted
 * sink goes on with the chain; a digest is written only when the head moved (or for
 * retention).
 */
export const writer = (directory: string, key: crypto.KeyObject) => {
  fs.mkdirSync(directory, { recursive: true })
  let last = readAll(directory).at(-1)?.digest
  const write = (
    kind: DigestBody["kind"],
    state: ChainState,
    removed?: DigestBody["removed"]
  ): Digest | undefined => {
    if (
      kind === "head" &&
      last !== undefined &&
      last.seq === state.head.seq &&
      last.hash === state.head.hash &&
      last.anchor.seq === state.anchor.seq
    ) {
      return undefined
    }
    const digest = sign(
      {
        format: "workos-relay-audit-digest",
        version: 1,
        n: (last?.n ?? 0) + 1,
        kind,
        time: new Date().toISOString(),
        anchor: state.anchor,
        seq: state.head.seq,
        hash: state.head.hash,
        count: state.head.count,
        ...(removed === undefined ? {} : { removed }),
        previous: last === undefined ? null : digestHash(last)
      },
      key
    )
    // A new file each time (never rewritten): written whole, synced, then renamed in.
    const file = path.join(directory, fileName(digest.n))
    const tmp = `${file}.tmp`
    const fd = fs.openSync(tmp, "w")
    try {
      fs.writeFileSync(fd, `${JSON.stringify(digest, null, 2)}\n`)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, file)
    last = digest
    return digest
  }
  return { write }
}
