/**
 * The options of an `eventbridge` sink: where events go (region, event bus, endpoint),
 * how each entry looks (source, detail-type, resources, detail) and how to sign in.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as DetailType from "./internal/DetailType.ts"

/** AWS's own sources live under `aws.`; EventBridge refuses any other sender there. */
export const Source = Schema.String.pipe(
  Schema.check(
    Schema.isMinLength(1, { message: "source must not be empty" }),
    Schema.isMaxLength(256, { message: "source must be at most 256 characters" }),
    Schema.makeFilter((source: string) =>
      source.toLowerCase().startsWith("aws.")
        ? `source must not start with "aws." (reserved for AWS services), got ${JSON.stringify(source)}`
        : undefined
    )
  )
)

const busName = /^[/.\-_A-Za-z0-9]{1,256}$/
const busArn = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[/.\-_A-Za-z0-9]{1,256}$/

/** An event bus name (`default`, `workos-events`) or ARN (`arn:aws:events:<region>:<account>:event-bus/<name>`). */
export const EventBus = Schema.String.pipe(
  Schema.check(
    Schema.isMinLength(1, { message: "eventBus must not be empty" }),
    Schema.makeFilter((bus: string) =>
      bus === "" || busName.test(bus) || busArn.test(bus)
        ? undefined
        : `eventBus must be a bus name (letters, digits, . - _ /) or an event-bus ARN, got ${JSON.stringify(bus)}`
    )
  )
)

/** An AWS region such as `us-east-1`. */
export const Region = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^[a-z]{2}(-[a-z]+)+-\d+$/, { message: "region must look like us-east-1" })
  )
)

/** A detail-type template: literal text and `{{event}}` (the event type). */
export const DetailTypeTemplate = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((template: string) => {
      const parsed = DetailType.parse(template)
      return typeof parsed === "string" ? parsed : undefined
    })
  )
)

/** Explicit credentials; without them the SDK's standard chain is used (env, profile, SSO, IMDS, ...). */
export const Credentials = Schema.Struct({
  accessKeyId: Schema.RedactedFromValue(Schema.NonEmptyString),
  secretAccessKey: Schema.RedactedFromValue(Schema.NonEmptyString),
  sessionToken: Schema.optionalKey(Schema.RedactedFromValue(Schema.NonEmptyString))
})
export type Credentials = typeof Credentials.Type

const durationUnits: Record<string, number> = { ms: 1, s: 1_000, m: 60_000 }
const parseMillis = (input: string | number): number | undefined => {
  if (typeof input === "number") return input
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(input)
  return match === null ? undefined : Number(match[1]) * (durationUnits[match[2] ?? "ms"] ?? 1)
}

/** A request timeout, as "10s", "500ms", "1m" or a number of milliseconds; decoded to milliseconds. */
export const Timeout = Schema.Union([Schema.Number, Schema.String])
  .annotate({
    description:
      'How long one PutEvents request may take: "10s" (default), "500ms", or milliseconds'
  })
  .pipe(
    Schema.check(
      Schema.makeFilter((input: string | number) => {
        const millis = parseMillis(input)
        return millis !== undefined && millis >= 100 && millis <= 300_000
          ? undefined
          : `requestTimeout must be a duration between 100ms and 5m ("10s", "500ms" or milliseconds), got ${JSON.stringify(input)}`
      })
    ),
    Schema.decodeTo(
      Schema.Number,
      SchemaTransformation.transform({
        decode: (input) => parseMillis(input)!,
        encode: (millis) => millis
      })
    )
  )

export const Config = Schema.Struct({
  region: Schema.optionalKey(
    Region.annotateKey({
      description: "The AWS region; when absent, the SDK's chain (AWS_REGION, profile) decides"
    })
  ),
  eventBus: EventBus.annotateKey({
    description: "The event bus: a name or an ARN (the ARN for another account's bus)"
  }),
  source: Source.annotateKey({
    description: 'Every entry\'s Source; not under "aws."; default "workos"'
  }).pipe(Schema.withDecodingDefaultKey(Effect.succeed("workos"))),
  detailType: DetailTypeTemplate.annotateKey({
    description: 'Every entry\'s DetailType; {{event}} is the event type; default "{{event}}"'
  }).pipe(Schema.withDecodingDefaultKey(Effect.succeed("{{event}}"))),
  detail: Schema.Literals(["event", "data"])
    .annotateKey({
      description: 'Detail: the whole event as WorkOS sent it ("event", default) or only its data'
    })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed("event" as const))),
  resources: Schema.Array(Schema.NonEmptyString)
    .annotateKey({ description: "ARNs put in every entry's Resources" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed([]))),
  endpoint: Schema.optionalKey(
    Schema.String.pipe(
      Schema.check(
        Schema.isPattern(/^https?:\/\/\S+$/, { message: "endpoint must be an http(s) URL" })
      )
    ).annotateKey({
      description: "Another endpoint (VPC endpoint, LocalStack); AWS's regional one when absent"
    })
  ),
  credentials: Schema.optionalKey(
    Credentials.annotateKey({
      description:
        "accessKeyId, secretAccessKey, sessionToken; the SDK's standard chain when absent"
    })
  ),
  requestTimeout: Timeout.pipe(Schema.withDecodingDefaultKey(Effect.succeed("10s")))
})
export type Config = typeof Config.Type
