//! Which elements form a group ("segment") — one description for every scaler and norm.
//!
//! Every operation in gpunorm is "statistics per segment, then an elementwise
//! affine step". What differs between a column scaler, batch norm, layer norm,
//! group norm and instance norm is only *which* elements of a C-order tensor
//! form a segment. [`Grouping`] names those cases; [`Segments`] is the one
//! description the kernels read:
//!
//! ```text
//! segment s  = (s_hi, s_lo) = (s / seg_div, s % seg_div)
//! element k  = (k_hi, k_lo) = (k / inner_div, k % inner_div)
//! offset(s,k) = s_hi*seg_stride_hi + s_lo*seg_stride_lo + k_hi*elem_stride_hi + k_lo*elem_stride_lo
//! ```
//!
//! The reverse direction — from a flat element index `e` to its segment, and to
//! the index of its γ/β parameter — is an [`IndexMap`]:
//! `((e / d1) % m1) * s1 + ((e % m2) / d2) * s2`.

use crate::error::{Error, Result};

/// The named ways of grouping a tensor's elements into segments.
///
/// `spatial` is the product of the dimensions after the channel axis (NCHW) or
/// between batch and channel axis (channels-last); 1 for `(N, C)` inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Columns of a row-major `(rows, cols)` matrix: the scalers' features.
    Columns { rows: usize, cols: usize },
    /// One segment per channel over batch and spatial dims: batch norm.
    Channels { n: usize, c: usize, spatial: usize, channels_last: bool },
    /// One segment per row of `(rows, len)`; γ/β indexed by position in the row: layer norm.
    Rows { rows: usize, len: usize },
    /// One segment per (sample, group of `c / groups` channels): group norm. γ/β per channel.
    Groups { n: usize, c: usize, spatial: usize, groups: usize, channels_last: bool },
    /// One segment per (sample, channel): instance norm. γ/β per channel.
    Instances { n: usize, c: usize, spatial: usize, channels_last: bool },
}

/// The kernel-side description of segments (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    pub count: u32,
    pub len: u32,
    pub seg_div: u32,
    pub seg_stride_hi: u32,
    pub seg_stride_lo: u32,
    pub inner_div: u32,
    pub elem_stride_hi: u32,
    pub elem_stride_lo: u32,
}

/// Maps a flat element index to a segment or parameter index:
/// `((e / d1) % m1) * s1 + ((e % m2) / d2) * s2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexMap {
    pub d1: u32,
    pub m1: u32,
    pub s1: u32,
    pub m2: u32,
    pub d2: u32,
    pub s2: u32,
}

/// What the four components of a vec4 view's load are (see [`Segments::vec4_view`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vec4Parts {
    /// Four neighbouring segments, at the same element.
    Segments,
    /// Four neighbouring elements of one segment.
    Elements,
}

impl IndexMap {
    /// `e / d`, no wrap.
    pub(crate) fn div(d: usize) -> Self {
        IndexMap { d1: d as u32, m1: u32::MAX, s1: 1, m2: 1, d2: 1, s2: 0 }
    }
    /// `(e / d) % m`.
    fn div_mod(d: usize, m: usize) -> Self {
        IndexMap { d1: d as u32, m1: m as u32, s1: 1, m2: 1, d2: 1, s2: 0 }
    }
    /// `e % m`.
    pub(crate) fn modulo(m: usize) -> Self {
        IndexMap { d1: 1, m1: 1, s1: 0, m2: m as u32, d2: 1, s2: 1 }
    }

    /// Apply the map to a flat element index.
    pub fn apply(&self, e: usize) -> usize {
        let t1 = ((e / self.d1 as usize) % self.m1 as usize) * self.s1 as usize;
        let t2 = ((e % self.m2 as usize) / self.d2 as usize) * self.s2 as usize;
        t1 + t2
    }
}

impl Segments {
    /// Flat offset of element `k` of segment `s`.
    pub fn offset(&self, s: usize, k: usize) -> usize {
        let (s_hi, s_lo) = (s / self.seg_div as usize, s % self.seg_div as usize);
        let (k_hi, k_lo) = (k / self.inner_div as usize, k % self.inner_div as usize);
        s_hi * self.seg_stride_hi as usize
            + s_lo * self.seg_stride_lo as usize
            + k_hi * self.elem_stride_hi as usize
            + k_lo * self.elem_stride_lo as usize
    }

    /// The same layout over the input read as vec4s, when every aligned vec4 holds
    /// either four neighbouring segments at one element ([`Vec4Parts::Segments`]: columns
    /// of a row-major matrix, channels-last) or four neighbouring elements of one segment
    /// ([`Vec4Parts::Elements`]: contiguous runs whose lengths are multiples of 4). The
    /// view's counts, strides and offsets are in vec4 units.
    pub fn vec4_view(&self) -> Option<(Segments, Vec4Parts)> {
        let m4 = |x: u32| x.is_multiple_of(4);
        let s = *self;
        if s.seg_div > 1 && s.seg_stride_lo == 1 {
            let ok = m4(s.seg_div)
                && m4(s.count)
                && m4(s.seg_stride_hi)
                && m4(s.elem_stride_hi)
                && (s.inner_div == 1 || m4(s.elem_stride_lo));
            let view = Segments {
                count: s.count / 4,
                seg_div: s.seg_div / 4,
                seg_stride_hi: s.seg_stride_hi / 4,
                elem_stride_hi: s.elem_stride_hi / 4,
                elem_stride_lo: if s.inner_div == 1 { 0 } else { s.elem_stride_lo / 4 },
                ..s
            };
            return ok.then_some((view, Vec4Parts::Segments));
        }
        let runs = (s.elem_stride_lo == 1 && m4(s.inner_div) && m4(s.elem_stride_hi))
            || (s.inner_div == 1 && s.elem_stride_hi == 1);
        let bases = m4(s.seg_stride_hi) && (s.seg_div == 1 || m4(s.seg_stride_lo));
        if !(runs && bases && m4(s.len)) {
            return None;
        }
        let contiguous = s.inner_div == 1;
        Some((
            Segments {
                len: s.len / 4,
                seg_stride_hi: s.seg_stride_hi / 4,
                seg_stride_lo: if s.seg_div == 1 { 0 } else { s.seg_stride_lo / 4 },
                inner_div: if contiguous { 1 } else { s.inner_div / 4 },
                elem_stride_hi: if contiguous { 1 } else { s.elem_stride_hi / 4 },
                elem_stride_lo: if contiguous { 0 } else { 1 },
                ..s
            },
            Vec4Parts::Elements,
        ))
    }

    /// Whether neighbouring segments (not neighbouring elements) are neighbours in memory:
    /// then a workgroup should spread its threads across segments to read coalesced.
    pub fn segments_interleaved(&self) -> bool {
        self.seg_div > 1 && self.seg_stride_lo == 1 && self.elem_stride_lo != 1 && self.elem_stride_hi != 1
    }
}

impl Grouping {
    /// Total number of elements of the tensor.
    pub fn numel(&self) -> usize {
        match *self {
            Grouping::Columns { rows, cols } => rows * cols,
            Grouping::Rows { rows, len } => rows * len,
            Grouping::Channels { n, c, spatial, .. }
            | Grouping::Groups { n, c, spatial, .. }
            | Grouping::Instances { n, c, spatial, .. } => n * c * spatial,
        }
    }

    /// Number of segments.
    pub fn num_segments(&self) -> usize {
        match *self {
            Grouping::Columns { cols, .. } => cols,
            Grouping::Channels { c, .. } => c,
            Grouping::Rows { rows, .. } => rows,
            Grouping::Groups { n, groups, .. } => n * groups,
            Grouping::Instances { n, c, .. } => n * c,
        }
    }

    /// Number of elements in each segment.
    pub fn segment_len(&self) -> usize {
        match *self {
            Grouping::Columns { rows, .. } => rows,
            Grouping::Channels { n, spatial, .. } => n * spatial,
            Grouping::Rows { len, .. } => len,
            Grouping::Groups { c, spatial, groups, .. } => (c / groups.max(1)) * spatial,
            Grouping::Instances { spatial, .. } => spatial,
        }
    }

    /// Number of distinct γ/β parameters (channels, features, or the row length).
    pub fn num_params(&self) -> usize {
        match *self {
            Grouping::Columns { cols, .. } => cols,
            Grouping::Rows { len, .. } => len,
            Grouping::Channels { c, .. } | Grouping::Groups { c, .. } | Grouping::Instances { c, .. } => c,
        }
    }

    /// Check that the grouping is well formed and fits the kernels' 32-bit indices.
    pub fn validate(&self) -> Result<()> {
        if let Grouping::Groups { c, groups, .. } = *self {
            if groups == 0 || c % groups != 0 {
                return Err(Error::InvalidParameter(format!(
                    "the number of channels ({c}) must be divisible by the number of groups ({groups})"
                )));
            }
        }
        let numel = self.numel();
        if numel > u32::MAX as usize {
            return Err(Error::TooLarge(format!(
                "{numel} elements; gpunorm's kernels index with 32 bits (at most {} elements per tensor)",
                u32::MAX
            )));
        }
        Ok(())
    }

    /// The kernel-side segment description.
    pub fn segments(&self) -> Segments {
        let u = |x: usize| x as u32;
        let seg = |count, len, seg_div, ssh, ssl, inner_div, esh, esl| Segments {
            count: u(count),
            len: u(len),
            seg_div: u(seg_div).max(1),
            seg_stride_hi: u(ssh),
            seg_stride_lo: u(ssl),
            inner_div: u(inner_div).max(1),
            elem_stride_hi: u(esh),
            elem_stride_lo: u(esl),
        };
        match *self {
            // column j, row i at i*cols + j
            Grouping::Columns { rows, cols } => seg(cols, rows, cols, 0, 1, 1, cols, 0),
            Grouping::Channels { n, c, spatial, channels_last: false } => {
                // channel ch, element (b, p) at b*c*spatial + ch*spatial + p
                seg(c, n * spatial, c, 0, spatial, spatial, c * spatial, 1)
            }
            Grouping::Channels { n, c, spatial, channels_last: true } => {
                // channel ch, element (b, p) at (b*spatial + p)*c + ch
                seg(c, n * spatial, c, 0, 1, 1, c, 0)
            }
            Grouping::Rows { rows, len } => seg(rows, len, 1, len, 0, 1, 1, 0),
            Grouping::Groups { n, c, spatial, groups, channels_last: false } => {
                let cg = c / groups.max(1);
                // segment (b, g): contiguous run of cg*spatial elements
                seg(n * groups, cg * spatial, groups, c * spatial, cg * spatial, 1, 1, 0)
            }
            Grouping::Groups { n, c, spatial, groups, channels_last: true } => {
                let cg = c / groups.max(1);
                // segment (b, g), element (p, ch') at b*spatial*c + p*c + g*cg + ch'
                seg(n * groups, cg * spatial, groups, spatial * c, cg, cg, c, 1)
            }
            Grouping::Instances { n, c, spatial, channels_last: false } => seg(n * c, spatial, 1, spatial, 0, 1, 1, 0),
            Grouping::Instances { n, c, spatial, channels_last: true } => {
                // segment (b, ch), element p at b*spatial*c + p*c + ch
                seg(n * c, spatial, c, spatial * c, 1, 1, c, 0)
            }
        }
    }

    /// Flat element index → segment index.
    pub fn segment_map(&self) -> IndexMap {
        match *self {
            Grouping::Columns { cols, .. } => IndexMap::modulo(cols),
            Grouping::Channels { c, spatial, channels_last: false, .. } => IndexMap::div_mod(spatial, c),
            Grouping::Channels { c, channels_last: true, .. } => IndexMap::modulo(c),
            Grouping::Rows { len, .. } => IndexMap::div(len),
            Grouping::Groups { c, spatial, groups, channels_last: false, .. } => {
                IndexMap::div((c / groups.max(1)) * spatial)
            }
            Grouping::Groups { c, spatial, groups, channels_last: true, .. } => IndexMap {
                d1: (spatial * c) as u32,
                m1: u32::MAX,
                s1: groups as u32,
                m2: c as u32,
                d2: (c / groups.max(1)).max(1) as u32,
                s2: 1,
            },
            Grouping::Instances { spatial, channels_last: false, .. } => IndexMap::div(spatial),
            Grouping::Instances { c, spatial, channels_last: true, .. } => {
                IndexMap { d1: (spatial * c) as u32, m1: u32::MAX, s1: c as u32, m2: c as u32, d2: 1, s2: 1 }
            }
        }
    }

    /// Flat element index → γ/β parameter index.
    pub fn param_map(&self) -> IndexMap {
        match *self {
            Grouping::Columns { cols, .. } => IndexMap::modulo(cols),
            Grouping::Rows { len, .. } => IndexMap::modulo(len),
            Grouping::Channels { c, spatial, channels_last, .. }
            | Grouping::Groups { c, spatial, channels_last, .. }
            | Grouping::Instances { c, spatial, channels_last, .. } => {
                if channels_last {
                    IndexMap::modulo(c)
                } else {
                    IndexMap::div_mod(spatial, c)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec4_views_address_the_same_elements() {
        let layouts = [
            Grouping::Columns { rows: 5, cols: 8 },
            Grouping::Columns { rows: 5, cols: 6 },
            Grouping::Rows { rows: 3, len: 12 },
            Grouping::Rows { rows: 3, len: 10 },
            Grouping::Channels { n: 2, c: 3, spatial: 8, channels_last: false },
            Grouping::Channels { n: 2, c: 8, spatial: 3, channels_last: true },
            Grouping::Groups { n: 2, c: 8, spatial: 4, groups: 2, channels_last: false },
            Grouping::Groups { n: 2, c: 8, spatial: 3, groups: 2, channels_last: true },
            Grouping::Instances { n: 2, c: 3, spatial: 8, channels_last: false },
        ];
        let mut seen = 0;
        for g in layouts {
            let seg = g.segments();
            let Some((view, parts)) = seg.vec4_view() else { continue };
            seen += 1;
            for s in 0..seg.count as usize {
                for k in 0..seg.len as usize {
                    let (vs, vk, comp) = match parts {
                        Vec4Parts::Segments => (s / 4, k, s % 4),
                        Vec4Parts::Elements => (s, k / 4, k % 4),
                    };
                    assert_eq!(4 * view.offset(vs, vk) + comp, seg.offset(s, k), "{g:?} s={s} k={k}");
                }
            }
        }
        assert!(seen >= 6, "only {seen} layouts had a vec4 view");
        assert!(Grouping::Columns { rows: 5, cols: 6 }.segments().vec4_view().is_none());
        assert!(Grouping::Rows { rows: 3, len: 10 }.segments().vec4_view().is_none());
    }

    fn all_groupings() -> Vec<Grouping> {
        let mut v = vec![Grouping::Columns { rows: 5, cols: 3 }, Grouping::Rows { rows: 4, len: 6 }];
        for cl in [false, true] {
            v.push(Grouping::Channels { n: 3, c: 4, spatial: 5, channels_last: cl });
            v.push(Grouping::Groups { n: 2, c: 6, spatial: 3, groups: 3, channels_last: cl });
            v.push(Grouping::Instances { n: 3, c: 2, spatial: 4, channels_last: cl });
        }
        v
    }

    /// The forward description (segment, k) → offset and the reverse map
    /// offset → segment must agree and cover every element exactly once.
    #[test]
    fn segments_and_maps_agree_and_partition() {
        for g in all_groupings() {
            let s = g.segments();
            let map = g.segment_map();
            let mut seen = vec![0u32; g.numel()];
            for seg in 0..g.num_segments() {
                for k in 0..g.segment_len() {
                    let off = s.offset(seg, k);
                    assert!(off < g.numel(), "{g:?}: offset {off} out of range");
                    seen[off] += 1;
                    assert_eq!(map.apply(off), seg, "{g:?}: element {off}");
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{g:?}: not a partition: {seen:?}");
        }
    }

    #[test]
    fn param_map_is_channel_or_position() {
        // NCHW: element (b, ch, p) → ch
        let g = Grouping::Groups { n: 2, c: 6, spatial: 3, groups: 3, channels_last: false };
        for b in 0..2 {
            for ch in 0..6 {
                for p in 0..3 {
                    assert_eq!(g.param_map().apply((b * 6 + ch) * 3 + p), ch);
                }
            }
        }
        let g = Grouping::Instances { n: 2, c: 4, spatial: 3, channels_last: true };
        for b in 0..2 {
            for p in 0..3 {
                for ch in 0..4 {
                    assert_eq!(g.param_map().apply((b * 3 + p) * 4 + ch), ch);
                }
            }
        }
        let g = Grouping::Rows { rows: 3, len: 5 };
        assert_eq!(g.param_map().apply(13), 3);
    }

    #[test]
    fn groups_must_divide_channels() {
        let g = Grouping::Groups { n: 1, c: 6, spatial: 1, groups: 4, channels_last: false };
        assert!(matches!(g.validate(), Err(Error::InvalidParameter(_))));
    }
}
