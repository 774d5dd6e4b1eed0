/**
 * tf.train.Example / tf.train.SequenceExample for protobufjs.
 *
 * The schema is TensorFlow's example.proto and feature.proto, trimmed to the
 * messages YouTube-8M uses and parsed once at module load. Field names keep
 * TensorFlow's snake_case (keepCase) so they read the same as in the .proto.
 */
import protobuf from "protobufjs";

const EXAMPLE_PROTO = `
syntax = "proto3";
package tensorflow;

message BytesList { repeated bytes value = 1; }
message FloatList { repeated float value = 1 [packed = true]; }
message Int64List { repeated int64 value = 1 [packed = true]; }

message Feature {
  oneof kind {
    BytesList bytes_list = 1;
    FloatList float_list = 2;
    Int64List int64_list = 3;
  }
}

message Features { map<string, Feature> feature = 1; }
message FeatureList { repeated Feature feature = 1; }
message FeatureLists { map<string, FeatureList> feature_list = 1; }

message Example { Features features = 1; }

message SequenceExample {
  Features context = 1;
  FeatureLists feature_lists = 2;
}
`;

export const tfExampleRoot: protobuf.Root = protobuf.parse(EXAMPLE_PROTO, { keepCase: true }).root;
export const ExampleType: protobuf.Type = tfExampleRoot.lookupType("tensorflow.Example");
export const SequenceExampleType: protobuf.Type = tfExampleRoot.lookupType("tensorflow.SequenceExample");

/** protobufjs hands int64 values back as Long objects (or numbers when Long is unavailable). */
export interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
}
export type Int64Value = number | LongLike;

export interface BytesList {
  value: Uint8Array[];
}
export interface FloatList {
  value: number[];
}
export interface Int64List {
  value: Int64Value[];
}
/** Exactly one of the lists is set on a decoded Feature (the others are null or absent). */
export interface Feature {
  bytes_list?: BytesList | null;
  float_list?: FloatList | null;
  int64_list?: Int64List | null;
}
export interface Features {
  feature: Record<string, Feature>;
}
export interface FeatureList {
  feature: Feature[];
}
export interface FeatureLists {
  feature_list: Record<string, FeatureList>;
}
export interface Example {
  features?: Features | null;
}
export interface SequenceExample {
  context?: Features | null;
  feature_lists?: FeatureLists | null;
}

export type FeatureKind = "bytes_list" | "float_list" | "int64_list";

/** Which list a Feature carries, or undefined for an empty Feature. */
export function featureKind(f: Feature): FeatureKind | undefined {
  if (f.bytes_list) return "bytes_list";
  if (f.float_list) return "float_list";
  if (f.int64_list) return "int64_list";
  return undefined;
}

/** Looks a name up in a decoded protobuf map without touching inherited properties. */
export function mapGet<T>(map: Record<string, T> | null | undefined, key: string): T | undefined {
  return map && Object.hasOwn(map, key) ? map[key] : undefined;
}

/** Converts an int64 to a JS number, throwing a RangeError if it is outside ±2^53. */
export function int64ToNumber(v: Int64Value): number {
  const n = typeof v === "number" ? v : v.toNumber();
  if (!Number.isSafeInteger(n)) {
    const text = typeof v === "number" ? String(v) : `Long(high=${v.high}, low=${v.low >>> 0})`;
    throw new RangeError(`int64 value ${text} is not a safe integer`);
  }
  return n;
}

/**
 * Decodes a serialized tf.train.Example. Throws protobufjs's error on malformed
 * wire data. Under Node, bytes_list values are views into `bytes` (protobufjs
 * slices Buffers), so copy or convert them before reusing the input buffer.
 */
export function decodeExample(bytes: Uint8Array): Example {
  return ExampleType.decode(bytes) as unknown as Example;
}

/**
 * Decodes a serialized tf.train.SequenceExample. Because SequenceExample.context
 * and Example.features are both field 1 of type Features, an Example decodes
 * here too (with no feature_lists), so one decode serves both kinds.
 */
export function decodeSequenceExample(bytes: Uint8Array): SequenceExample {
  return SequenceExampleType.decode(bytes) as unknown as SequenceExample;
}

function encodeChecked(type: protobuf.Type, msg: object): Uint8Array {
  const problem = type.verify(msg);
  if (problem) throw new TypeError(`invalid ${type.fullName.slice(1)}: ${problem}`);
  return type.encode(type.fromObject(msg as Record<string, unknown>)).finish();
}

/** Serializes a tf.train.Example (after verifying its shape). */
export function encodeExample(msg: Example): Uint8Array {
  return encodeChecked(ExampleType, msg);
}

/** Serializes a tf.train.SequenceExample (after verifying its shape). */
export function encodeSequenceExample(msg: SequenceExample): Uint8Array {
  return encodeChecked(SequenceExampleType, msg);
}

// Small builders so tools and tests can write Examples without spelling out the nesting.
export function bytesFeature(...values: (Uint8Array | string)[]): Feature {
  return { bytes_list: { value: values.map((v) => (typeof v === "string" ? Buffer.from(v, "utf8") : v)) } };
}
export function floatFeature(values: ArrayLike<number>): Feature {
  return { float_list: { value: Array.from(values) } };
}
export function int64Feature(values: ArrayLike<number>): Feature {
  return { int64_list: { value: Array.from(values) } };
}
