// numpy's default generator in JavaScript, bit for bit: `np.random.default_rng([seed, block])`
// (SeedSequence -> PCG64) and its `random()` doubles, so the page draws exactly the uniforms the
// Python runtime draws (runtime/sampling.py: row i of a stream comes from block i // 1024).

export const BLOCK = 1024; // rows per generator block, as runtime/sampling.py

const MASK32 = 0xffffffffn;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
const PCG_MULTIPLIER = (2549297995355413924n << 64n) + 4865540595714422341n;
const POOL_SIZE = 4;
const [INIT_A, MULT_A, INIT_B, MULT_B] = [0x43b0d7e5, 0x931e8875, 0x8b51f9dd, 0x58f38ded];
const [MIX_MULT_L, MIX_MULT_R] = [0xca01f9dd, 0x4973f715];

const mul32 = (a, b) => Math.imul(a, b) >>> 0;

function entropyWords(values) {
  // each non-negative integer -> its little-endian uint32 words (0 -> [0]), concatenated
  const words = [];
  for (const value of values) {
    let n = BigInt(value);
    if (n < 0n) throw new Error(`expected non-negative seeds, got ${value}`);
    do {
      words.push(Number(n & MASK32));
      n >>= 32n;
    } while (n > 0n);
  }
  return words;
}

function seedSequenceState(values, words) {
  // SeedSequence(values).generate_state(words, uint32)
  const entropy = entropyWords(values);
  let hashA = INIT_A;
  const hashmix = (value) => {
    let v = (value ^ hashA) >>> 0;
    hashA = mul32(hashA, MULT_A);
    v = mul32(v, hashA);
    return (v ^ (v >>> 16)) >>> 0;
  };
  const mix = (x, y) => {
    const r = (mul32(MIX_MULT_L, x) - mul32(MIX_MULT_R, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = Array.from({ length: POOL_SIZE }, (_, i) => hashmix(i < entropy.length ? entropy[i] : 0));
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (let src = POOL_SIZE; src < entropy.length; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  let hashB = INIT_B;
  return Array.from({ length: words }, (_, i) => {
    let v = (pool[i % POOL_SIZE] ^ hashB) >>> 0;
    hashB = mul32(hashB, MULT_B);
    v = mul32(v, hashB);
    return (v ^ (v >>> 16)) >>> 0;
  });
}

export class PCG64 {
  // numpy.random.PCG64 (XSL-RR output of a 128-bit LCG), seeded like numpy from a SeedSequence
  constructor(values) {
    const w = seedSequenceState(values, 8).map(BigInt);
    const u64 = (lo, hi) => (hi << 32n) | lo; // generate_state(4, uint64) is a view of the uint32 words
    const [s0, s1, i0, i1] = [u64(w[0], w[1]), u64(w[2], w[3]), u64(w[4], w[5]), u64(w[6], w[7])];
    this.inc = (((i0 << 64n) | i1) << 1n | 1n) & MASK128;
    this.state = 0n;
    this.step();
    this.state = (this.state + ((s0 << 64n) | s1)) & MASK128;
    this.step();
  }

  step() {
    this.state = (this.state * PCG_MULTIPLIER + this.inc) & MASK128;
  }

  nextUint64() {
    this.step();
    const value = ((this.state >> 64n) ^ this.state) & MASK64;
    const rot = this.state >> 122n;
    return ((value >> rot) | (value << ((64n - rot) & 63n))) & MASK64;
  }

  random() {
    // Generator.random(): the top 53 bits as a double in [0, 1)
    return Number(this.nextUint64() >> 11n) / 9007199254740992;
  }
}

export function uniformRows(seed, start, count, dim) {
  // rows start..start+count-1 of runtime/sampling.py's prior_uniforms(seed, start, count, dim):
  // an array of Float64Array(dim)
  const rows = [];
  let generator = null;
  let block = -1;
  let next = 0; // the row `generator` draws next
  for (let i = start; i < start + count; i++) {
    const b = Math.floor(i / BLOCK);
    if (b !== block) {
      generator = new PCG64([seed, b]);
      block = b;
      next = b * BLOCK;
    }
    for (; next < i; next++) for (let k = 0; k < dim; k++) generator.random();
    rows.push(Float64Array.from({ length: dim }, () => generator.random()));
    next = i + 1;
  }
  return rows;
}
