// Order-preserving keys, exact ranks and numpy's linear interpolation: what every
// exact-quantile kernel shares (prepended to select.wgsl and network.wgsl after
// common.wgsl; see src/gpu/shaders.rs).
//
// Values map to order-preserving u32 keys (positives: flip the sign bit; negatives:
// flip all bits; NaN has no key). A q's rank q·(n−1) is rounded as float64 would round
// it, its floor and its fraction split into two f32 for the interpolation.

fn key_of(b: u32) -> u32 {
    return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn value_of(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k ^ 0x80000000u, (k & 0x80000000u) != 0u));
}

// A q in (0, 1] as m · 2^-e with m = m_hi · 2^32 + m_lo < 2^53 (its float64 bits);
// qf is q rounded to float32 (for e > 90, where only a tiny fraction is left).
struct QInfo {
    m_hi: u32,
    m_lo: u32,
    e: u32,
    qf: f32,
}

// 96-bit unsigned integers as vec3<u32> (x = lowest limb), for exact ranks.

fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

fn shr3(v: vec3<u32>, s: u32) -> vec3<u32> {
    var a = v;
    var t = s;
    if (t >= 64u) {
        a = vec3<u32>(a.z, 0u, 0u);
        t -= 64u;
    } else if (t >= 32u) {
        a = vec3<u32>(a.y, a.z, 0u);
        t -= 32u;
    }
    if (t == 0u) {
        return a;
    }
    return vec3<u32>((a.x >> t) | (a.y << (32u - t)), (a.y >> t) | (a.z << (32u - t)), a.z >> t);
}

fn shl3(v: vec3<u32>, s: u32) -> vec3<u32> {
    var a = v;
    var t = s;
    if (t >= 64u) {
        a = vec3<u32>(0u, 0u, a.x);
        t -= 64u;
    } else if (t >= 32u) {
        a = vec3<u32>(0u, a.x, a.y);
        t -= 32u;
    }
    if (t == 0u) {
        return a;
    }
    return vec3<u32>(a.x << t, (a.y << t) | (a.x >> (32u - t)), (a.z << t) | (a.y >> (32u - t)));
}

fn add3(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
    let x = a.x + b.x;
    let c0 = select(0u, 1u, x < a.x);
    let y1 = a.y + b.y;
    let c1 = select(0u, 1u, y1 < a.y);
    let y = y1 + c0;
    let c2 = select(0u, 1u, y < y1);
    return vec3<u32>(x, y, a.z + b.z + c1 + c2);
}

// a − b for a >= b.
fn sub3(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
    let x = a.x - b.x;
    let b0 = select(0u, 1u, a.x < b.x);
    let y1 = a.y - b.y;
    let b1 = select(0u, 1u, a.y < b.y);
    let y = y1 - b0;
    let b2 = select(0u, 1u, y1 < b0);
    return vec3<u32>(x, y, a.z - b.z - b1 - b2);
}

fn lt3(a: vec3<u32>, b: vec3<u32>) -> bool {
    if (a.z != b.z) {
        return a.z < b.z;
    }
    if (a.y != b.y) {
        return a.y < b.y;
    }
    return a.x < b.x;
}

fn bitlen3(v: vec3<u32>) -> u32 {
    if (v.z != 0u) {
        return 96u - countLeadingZeros(v.z);
    }
    if (v.y != 0u) {
        return 64u - countLeadingZeros(v.y);
    }
    if (v.x != 0u) {
        return 32u - countLeadingZeros(v.x);
    }
    return 0u;
}

// v · 2^-e (v < 2^e <= 2^90) as a float32 pair hi + lo carrying 48 bits.
fn split_f32(v: vec3<u32>, e: u32) -> vec2<f32> {
    let bl = bitlen3(v);
    let sh = select(0u, bl - 24u, bl > 24u);
    let top = shr3(v, sh).x;
    let rem = sub3(v, shl3(vec3<u32>(top, 0u, 0u), sh));
    let bl2 = bitlen3(rem);
    let sh2 = select(0u, bl2 - 24u, bl2 > 24u);
    let top2 = shr3(rem, sh2).x;
    return vec2<f32>(ldexp(f32(top), i32(sh) - i32(e)), ldexp(f32(top2), i32(sh2) - i32(e)));
}

struct Rank {
    lo: u32,
    th: f32,
    tl: f32,
    flag: u32,
}

// floor and fraction of float64(q · nm1), rounded to nearest even exactly as the
// reference's `q * (n - 1) as f64`, for any nm1 < 2^32.
fn rank_of(q: QInfo, nm1: u32) -> Rank {
    if (q.e > 90u) {
        // q < 2^-37: the product is far below 1 (lo = 0, a tiny weight below 0.5).
        return Rank(0u, q.qf * f32(nm1), 0.0, 0u);
    }
    let t = mul_wide(nm1, q.m_lo);
    let u = mul_wide(nm1, q.m_hi);
    let mid = t.y + u.x;
    let carry = select(0u, 1u, mid < t.y);
    var prod = vec3<u32>(t.x, mid, u.y + carry);
    let bl = bitlen3(prod);
    if (bl > 53u) {
        let d = bl - 53u;
        var kept = shr3(prod, d);
        let rem = sub3(prod, shl3(kept, d));
        let half = shl3(vec3<u32>(1u, 0u, 0u), d - 1u);
        if (lt3(half, rem) || (all(rem == half) && (kept.x & 1u) == 1u)) {
            kept = add3(kept, vec3<u32>(1u, 0u, 0u));
        }
        prod = shl3(kept, d);
    }
    let lo3 = shr3(prod, q.e);
    let fb = sub3(prod, shl3(lo3, q.e));
    if (all(fb == vec3<u32>(0u))) {
        return Rank(lo3.x, 0.0, 0.0, 0u);
    }
    if (lt3(fb, shl3(vec3<u32>(1u, 0u, 0u), q.e - 1u))) {
        let f = split_f32(fb, q.e);
        return Rank(lo3.x, f.x, f.y, 0u);
    }
    let f = split_f32(sub3(shl3(vec3<u32>(1u, 0u, 0u), q.e), fb), q.e);
    return Rank(lo3.x, f.x, f.y, 1u);
}

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// numpy's _lerp: a + (b − a)·t, or b − (b − a)·(1 − t) for t >= 0.5; w = th + tl is
// t or 1 − t. b − a is kept exactly as d + e (TwoSum) and w to 48 bits, so that only
// the last two roundings remain.
fn lerp_numpy(a: f32, b: f32, th: f32, tl: f32, flag: u32) -> f32 {
    let d = b - a;
    if (is_inf(d)) {
        // |b − a| beyond float32: the product (b − a)·w (w <= 1/2) is not.
        let m = 2.0 * ((b * 0.5 - a * 0.5) * (th + tl));
        return select(a + m, b - m, flag != 0u);
    }
    let na = -a;
    let bv = d - na;
    let av = d - bv;
    let e = (b - bv) + (na - av);
    let m = fma(d, th, d * tl + e * th);
    return select(a + m, b - m, flag != 0u);
}
