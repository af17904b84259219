//! The GPT-2 forward pass with a KV cache.

use std::path::Path;

use decoding::{LanguageModel, TokenId};
use ndarray::{Array3, ArrayView2, Axis, aview1};

use crate::config::Config;
use crate::error::{Gpt2Error, Result};
use crate::kernels::{
    KernelPath, activate, layer_norm, linear, linear_threaded, scores, softmax, weighted_sum,
};
use crate::weights::{Linear, Weights};
use crate::workers::Workers;

/// Positions processed together in a prefill: each weight is read from
/// memory once for this many inputs (a 256-token prompt reads the weights
/// twice), and the scratch buffers stay a few megabytes.
const CHUNK: usize = 128;

/// GPT-2, ready to generate: the weights, a KV cache preallocated to
/// `n_positions`, and scratch buffers, so a cached step allocates nothing.
///
/// It implements [`LanguageModel`]: each [`forward`](LanguageModel::forward)
/// runs only the new tokens (one position for a generation step) against
/// the cached keys and values of the earlier ones, and writes the logits of
/// the position after the last new token.
///
/// # Exactness
///
/// A position's numbers do not depend on how the sequence was split into
/// calls: the prompt in one call, token by token, or the whole sequence
/// again after [`reset`](LanguageModel::reset) give bit-identical logits.
///
/// # Performance
///
/// A cached step reads every weight once, as contiguous rows (the linear
/// layers are stored `[out, in]` so each output is one dot product), the
/// head included: the 50257 × 768 embedding table is one pass for all
/// logits. The step is bound by memory bandwidth (about 500 MB of f32
/// weights for the 124M model, half that for an f16 or bf16 checkpoint,
/// which stays in 16 bits). The products run on the widest
/// [`KernelPath`] the CPU has ([`Gpt2::with_kernels`] picks another);
/// [`Gpt2::with_threads`] splits them across threads.
///
/// # Example
///
/// ```no_run
/// use decoding::LanguageModel;
/// use gpt2::Gpt2;
///
/// let mut model = Gpt2::from_dir("path/to/gpt2".as_ref())?;
/// let mut logits = vec![0.0; model.vocab_size()];
/// model.forward(&[3666, 12507, 3807, 318], 0, &mut logits)?; // "My favourite movie is"
/// model.forward(&[383], 4, &mut logits)?;                    // " The", at position 4
/// # Ok::<(), gpt2::Gpt2Error>(())
/// ```
#[derive(Debug)]
pub struct Gpt2 {
    config: Config,
    weights: Weights,
    pub(crate) cache: KvCache,
    scratch: Scratch,
    workers: Workers,
    kernels: KernelPath,
}

/// The keys and values of the positions fed so far: one sequence's state.
#[derive(Debug, Clone)]
pub(crate) struct KvCache {
    /// Per layer, `[n_head, n_positions, head_dim]`.
    pub(crate) keys: Vec<Array3<f32>>,
    pub(crate) values: Vec<Array3<f32>>,
    /// Cached positions.
    pub(crate) len: usize,
}

impl KvCache {
    /// An empty cache for `config`, preallocated to `n_positions`.
    pub(crate) fn new(config: &Config) -> Self {
        let shape = (config.n_head, config.n_positions, config.head_dim());
        let layers = || (0..config.n_layer).map(|_| Array3::zeros(shape)).collect();
        KvCache { keys: layers(), values: layers(), len: 0 }
    }

    /// Makes this cache a copy of `other`'s cached positions (the positions
    /// past `other.len` are left as they are: they are never read).
    pub(crate) fn copy_from(&mut self, other: &KvCache) {
        let len = other.len;
        let pairs =
            self.keys.iter_mut().zip(&other.keys).chain(self.values.iter_mut().zip(&other.values));
        for (dst, src) in pairs {
            let (_, positions, d) = src.dim();
            let dst = dst.as_slice_mut().unwrap_or_else(|| unreachable!("the cache is row-major"));
            let src = src.as_slice().unwrap_or_else(|| unreachable!("the cache is row-major"));
            for (d_head, s_head) in
                dst.chunks_exact_mut(positions * d).zip(src.chunks_exact(positions * d))
            {
                d_head[..len * d].copy_from_slice(&s_head[..len * d]);
            }
        }
        self.len = len;
    }
}

#[derive(Debug)]
struct Scratch {
    /// The residual stream, `[CHUNK, n_embd]`.
    x: Vec<f32>,
    /// LayerNorm output, `[CHUNK, n_embd]`.
    normed: Vec<f32>,
    /// `[CHUNK, 3 n_embd]`.
    qkv: Vec<f32>,
    /// Attention output before its projection, `[CHUNK, n_embd]`.
    attn: Vec<f32>,
    /// A projection's output, `[CHUNK, n_embd]`.
    proj: Vec<f32>,
    /// MLP hidden layer, `[CHUNK, n_inner]`.
    hidden: Vec<f32>,
    /// Attention weights of one query, `[n_positions]`.
    scores: Vec<f32>,
    /// The rows of a block pass, `[CHUNK]`.
    lanes: Vec<Lane>,
    /// A threaded product's outputs, `[widest output, CHUNK]`.
    tmp: Vec<f32>,
    /// A threaded head's outputs, `[vocab, HEAD_ROWS]` (allocated by the
    /// first threaded head of several rows).
    head_tmp: Vec<f32>,
}

/// Rows the head computes per pass over its table when it runs on several
/// threads (which need a buffer of `HEAD_ROWS × vocab` outputs).
const HEAD_ROWS: usize = 32;

impl Gpt2 {
    /// Builds the model from loaded weights.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Config`] when the configuration is invalid or the
    /// weights do not have its shapes.
    pub fn new(config: Config, weights: Weights) -> Result<Self> {
        let path = crate::config::in_memory();
        config.validate(&path)?;
        let c = &config;
        let shapes_ok = weights.wte.dim() == (c.vocab_size, c.n_embd)
            && weights.wpe.dim() == (c.n_positions, c.n_embd)
            && weights.blocks.len() == c.n_layer
            && weights.blocks.iter().all(|b| {
                b.c_attn.weight.dim() == (3 * c.n_embd, c.n_embd)
                    && b.attn_proj.weight.dim() == (c.n_embd, c.n_embd)
                    && b.c_fc.weight.dim() == (c.n_inner, c.n_embd)
                    && b.mlp_proj.weight.dim() == (c.n_embd, c.n_inner)
            })
            && weights.lm_head.as_ref().is_none_or(|h| h.dim() == (c.vocab_size, c.n_embd))
            && weights.lm_head.is_none() == c.tie_word_embeddings;
        if !shapes_ok {
            return Err(Gpt2Error::Config {
                path,
                message: "the weights do not have the configuration's shapes".into(),
            });
        }
        let p = c.n_positions;
        let cache = KvCache::new(c);
        let scratch = Scratch {
            x: vec![0.0; CHUNK * c.n_embd],
            normed: vec![0.0; CHUNK * c.n_embd],
            qkv: vec![0.0; CHUNK * 3 * c.n_embd],
            attn: vec![0.0; CHUNK * c.n_embd],
            proj: vec![0.0; CHUNK * c.n_embd],
            hidden: vec![0.0; CHUNK * c.n_inner],
            scores: vec![0.0; p],
            lanes: Vec::with_capacity(CHUNK),
            tmp: vec![0.0; CHUNK * (3 * c.n_embd).max(c.n_inner)],
            head_tmp: Vec::new(),
        };
        let (workers, kernels) = (Workers::default(), KernelPath::best());
        Ok(Self { cache, config, weights, scratch, workers, kernels })
    }

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model
    /// directory.
    ///
    /// # Errors
    ///
    /// Those of [`Config::from_file`] and [`Weights::from_file`], and
    /// [`Gpt2Error::Io`] naming `model.safetensors` when it is absent.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let config = Config::from_file(&dir.join("config.json"))?;
        let weights = Weights::from_file(&dir.join("model.safetensors"), &config)?;
        Self::new(config, weights)
    }

    /// Splits the matrix products (of a cached step, a prompt, or a batched
    /// step of several sequences) and the head across `threads` threads, by
    /// output rows (1, the default, runs on the calling thread). The logits
    /// are the same bits whatever the count. The threads are started here,
    /// once: the calling thread and `threads - 1` waiting in a pool.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Threads`] when the operating system refuses the
    /// threads.
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        self.workers = Workers::new(threads)?;
        Ok(self)
    }

    /// Runs the products and attention on `path` instead of the widest
    /// one the CPU has ([`KernelPath::best`], the default): to compare
    /// paths, or to check what another CPU would compute. The logits of
    /// different paths differ by rounding only.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::KernelUnavailable`] when this CPU cannot run `path`.
    pub fn with_kernels(mut self, path: KernelPath) -> Result<Self> {
        if !path.is_available() {
            let available: Vec<&str> =
                KernelPath::ALL.iter().filter(|p| p.is_available()).map(|p| p.name()).collect();
            return Err(Gpt2Error::KernelUnavailable {
                path: path.name(),
                available: available.join(", "),
            });
        }
        self.kernels = path;
        Ok(self)
    }

    /// The kernel path the products run on.
    pub fn kernels(&self) -> KernelPath {
        self.kernels
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Number of cached positions (tokens fed since the last reset).
    pub fn position(&self) -> usize {
        self.cache.len
    }

    /// The longest sequence the model accepts (`n_positions`).
    pub fn max_positions(&self) -> usize {
        self.config.n_positions
    }

    /// Checks that new tokens at `position` continue the cache.
    fn check_position(&self, position: usize) -> Result<()> {
        if position != self.cache.len {
            return Err(Gpt2Error::PositionMismatch { position, cached: self.cache.len });
        }
        Ok(())
    }

    fn check(&self, tokens: &[TokenId], logits: &[f32]) -> Result<()> {
        let vocab = self.config.vocab_size;
        if logits.len() != vocab {
            return Err(Gpt2Error::LogitsLength { expected: vocab, found: logits.len() });
        }
        if tokens.is_empty() {
            return Err(Gpt2Error::EmptyInput);
        }
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(Gpt2Error::TokenOutOfRange { token, vocab });
        }
        let needed = self.cache.len + tokens.len();
        if needed > self.config.n_positions {
            return Err(Gpt2Error::ContextOverflow { needed, max: self.config.n_positions });
        }
        Ok(())
    }

    /// Runs up to [`CHUNK`] new positions through every block, appending
    /// their keys and values to the cache; the residual stream is left in
    /// `scratch.x`.
    fn run_chunk(&mut self, tokens: &[TokenId]) {
        let start = self.cache.len;
        let mut lanes = std::mem::take(&mut self.scratch.lanes);
        lanes.clear();
        lanes.extend(tokens.iter().enumerate().map(|(t, &token)| Lane {
            token,
            cache: 0,
            pos: start + t,
        }));
        let caches = std::slice::from_mut(&mut self.cache);
        let run = Run { path: self.kernels, workers: &self.workers };
        run_rows(&self.config, &self.weights, &mut self.scratch, run, caches, &lanes);
        self.scratch.lanes = lanes;
    }

    /// One new token for each of several sequences, each on its own cache
    /// (`lanes[j] = (cache, token)`, the caches all different), through
    /// every block together, so that each weight row is read once for all
    /// of them; row `j` of `logits` gets lane `j`'s next-token logits. The
    /// numbers are bit for bit those of [`forward`](LanguageModel::forward)
    /// on each cache alone.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::LogitsLength`], [`Gpt2Error::TokenOutOfRange`],
    /// [`Gpt2Error::SequenceOutOfRange`] or [`Gpt2Error::ContextOverflow`];
    /// no cache is touched then.
    pub(crate) fn forward_lanes(
        &mut self,
        caches: &mut [KvCache],
        lanes: &[(usize, TokenId)],
        logits: &mut [f32],
    ) -> Result<()> {
        let vocab = self.config.vocab_size;
        let expected = lanes.len() * vocab;
        if logits.len() != expected {
            return Err(Gpt2Error::LogitsLength { expected, found: logits.len() });
        }
        for &(cache, token) in lanes {
            if token as usize >= vocab {
                return Err(Gpt2Error::TokenOutOfRange { token, vocab });
            }
            let sequences = caches.len();
            let len = caches
                .get(cache)
                .ok_or(Gpt2Error::SequenceOutOfRange { sequence: cache, sequences })?
                .len;
            if len + 1 > self.config.n_positions {
                return Err(Gpt2Error::ContextOverflow {
                    needed: len + 1,
                    max: self.config.n_positions,
                });
            }
        }
        for (g, group) in lanes.chunks(CHUNK).enumerate() {
            let mut ls = std::mem::take(&mut self.scratch.lanes);
            ls.clear();
            ls.extend(group.iter().map(|&(cache, token)| Lane {
                token,
                cache,
                pos: caches[cache].len,
            }));
            let run = Run { path: self.kernels, workers: &self.workers };
            run_rows(&self.config, &self.weights, &mut self.scratch, run, caches, &ls);
            self.scratch.lanes = ls;
            let block = &mut logits[g * CHUNK * vocab..(g * CHUNK + group.len()) * vocab];
            self.head_batch(group.len(), block);
        }
        Ok(())
    }

    /// Final LayerNorm of the last position and the head, into `logits`.
    fn head(&mut self, last: usize, logits: &mut [f32]) {
        let c = &self.config;
        let e = c.n_embd;
        let s = &mut self.scratch;
        let h = &mut s.normed[..e];
        layer_norm(
            &s.x[last * e..(last + 1) * e],
            as_slice(&self.weights.ln_f.weight),
            as_slice(&self.weights.ln_f.bias),
            c.layer_norm_epsilon,
            h,
        );
        let table = self.weights.lm_head.as_ref().unwrap_or(&self.weights.wte).rows();
        linear_threaded(self.kernels, h, table, None, logits, e, &self.workers, &mut []);
    }

    /// Final LayerNorm of the first `rows` positions and the head, row `t`
    /// of `logits` for position `t`: one pass over the head's table for
    /// all of them on the calling thread, or one per [`HEAD_ROWS`] rows
    /// split across the model's threads (the same bits either way: each
    /// output is the same dot product).
    fn head_batch(&mut self, rows: usize, logits: &mut [f32]) {
        let c = &self.config;
        let (e, vocab) = (c.n_embd, c.vocab_size);
        let s = &mut self.scratch;
        let h = &mut s.normed[..rows * e];
        layer_norm(
            &s.x[..rows * e],
            as_slice(&self.weights.ln_f.weight),
            as_slice(&self.weights.ln_f.bias),
            c.layer_norm_epsilon,
            h,
        );
        let table = self.weights.lm_head.as_ref().unwrap_or(&self.weights.wte).rows();
        if self.workers.count() <= 1 || rows == 1 {
            let tmp = &mut [][..];
            return linear_threaded(self.kernels, h, table, None, logits, e, &self.workers, tmp);
        }
        let group = rows.min(HEAD_ROWS);
        if s.head_tmp.len() < group * vocab {
            s.head_tmp.resize(group * vocab, 0.0);
        }
        for (h, out) in h.chunks(group * e).zip(logits.chunks_mut(group * vocab)) {
            let tmp = &mut s.head_tmp;
            linear_threaded(self.kernels, h, table, None, out, e, &self.workers, tmp);
        }
    }
}

impl LanguageModel for Gpt2 {
    type Error = Gpt2Error;

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// Runs `tokens` after the cached positions and writes the next
    /// position's logits.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::EmptyInput`], [`Gpt2Error::TokenOutOfRange`],
    /// [`Gpt2Error::ContextOverflow`] (more than `n_positions` in all),
    /// [`Gpt2Error::PositionMismatch`] (`position` is not the number of
    /// cached positions) or [`Gpt2Error::LogitsLength`]. The cache is
    /// untouched on error.
    fn forward(&mut self, tokens: &[TokenId], position: usize, logits: &mut [f32]) -> Result<()> {
        self.check_position(position)?;
        self.check(tokens, logits)?;
        let mut last = 0;
        for chunk in tokens.chunks(CHUNK) {
            self.run_chunk(chunk);
            last = chunk.len() - 1;
        }
        self.head(last, logits);
        Ok(())
    }

    /// Runs `tokens` after the cached positions (in chunks, as
    /// [`forward`](LanguageModel::forward) does) and applies the final
    /// LayerNorm and the head to each of them: row `i` of `logits` holds
    /// the logits after `tokens[i]`, bit for bit what one `forward` per
    /// token writes (on one thread, the head reads its table once for all
    /// of a chunk's positions; the kernels give every row the same values
    /// whatever the number of rows). An empty `tokens` writes nothing.
    ///
    /// # Errors
    ///
    /// As [`forward`](LanguageModel::forward); [`Gpt2Error::LogitsLength`]
    /// when `logits` does not hold `tokens.len()` rows. The cache is
    /// untouched on error.
    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<()> {
        self.check_position(position)?;
        if tokens.is_empty() && logits.is_empty() {
            return Ok(());
        }
        let vocab = self.config.vocab_size;
        let expected = tokens.len() * vocab;
        if logits.len() != expected {
            return Err(Gpt2Error::LogitsLength { expected, found: logits.len() });
        }
        self.check(tokens, &logits[..vocab])?;
        for (g, chunk) in tokens.chunks(CHUNK).enumerate() {
            self.run_chunk(chunk);
            let block = &mut logits[g * CHUNK * vocab..(g * CHUNK + chunk.len()) * vocab];
            // One pass over the head's table for every position (a few on
            // several threads): what makes scoring a round of drafted
            // tokens cost about what scoring one does.
            self.head_batch(chunk.len(), block);
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Self::Error> {
        self.cache.len = 0;
        Ok(())
    }
}

/// Speculative decoding: several positions scored in one call, and the
/// cache truncated to drop drafted tokens that were not kept.
impl decoding::RewindableModel for Gpt2 {
    /// Keeps the first `len` cached positions (all of them when `len` is
    /// at least [`Gpt2::position`]); the keys and values past them are
    /// overwritten by the next call.
    fn rewind(&mut self, len: usize) -> Result<()> {
        self.cache.len = self.cache.len.min(len);
        Ok(())
    }
}

/// How a block pass runs: the kernel path and the threads.
#[derive(Debug, Clone, Copy)]
struct Run<'a> {
    path: KernelPath,
    workers: &'a Workers,
}

/// One row of a block pass: a new token, the cache it extends and its
/// position there.
#[derive(Debug, Clone, Copy)]
struct Lane {
    token: TokenId,
    cache: usize,
    pos: usize,
}

/// Runs up to [`CHUNK`] rows through every block: each row's key and value
/// are written to its cache at its position, then each row attends
/// causally to its own cache (positions `0..=pos`). Several rows may extend
/// one cache at consecutive positions (a prefill) or each its own cache (a
/// batch of sequences). The residual stream is left in `s.x`; each cache's
/// length becomes one past its last written position.
fn run_rows(
    c: &Config,
    w: &Weights,
    s: &mut Scratch,
    run: Run,
    caches: &mut [KvCache],
    lanes: &[Lane],
) {
    let (e, d, t_len) = (c.n_embd, c.head_dim(), lanes.len());
    let x = &mut s.x[..t_len * e];
    for (lane, row) in lanes.iter().zip(x.chunks_exact_mut(e)) {
        w.wte.widen_row(lane.token as usize, row);
        for (out, b) in row.iter_mut().zip(w.wpe.row(lane.pos)) {
            *out += b;
        }
    }
    for (layer, block) in w.blocks.iter().enumerate() {
        let mut scale = if c.scale_attn_weights { 1.0 / (d as f32).sqrt() } else { 1.0 };
        if c.scale_attn_by_inverse_layer_idx {
            scale /= (layer + 1) as f32;
        }
        let normed = &mut s.normed[..t_len * e];
        layer_norm(
            x,
            as_slice(&block.ln_1.weight),
            as_slice(&block.ln_1.bias),
            c.layer_norm_epsilon,
            normed,
        );
        let qkv = &mut s.qkv[..t_len * 3 * e];
        apply(&block.c_attn, normed, qkv, run, &mut s.tmp);

        // Write every row's key and value, then attend causally.
        for (lane, row) in lanes.iter().zip(qkv.chunks_exact(3 * e)) {
            let cache = &mut caches[lane.cache];
            let (keys, values) = (&mut cache.keys[layer], &mut cache.values[layer]);
            for h in 0..c.n_head {
                let k = &row[e + h * d..e + (h + 1) * d];
                let v = &row[2 * e + h * d..2 * e + (h + 1) * d];
                keys.index_axis_mut(Axis(0), h).row_mut(lane.pos).assign(&aview1(k));
                values.index_axis_mut(Axis(0), h).row_mut(lane.pos).assign(&aview1(v));
            }
        }
        let attn = &mut s.attn[..t_len * e];
        for (lane, (row, out_row)) in
            lanes.iter().zip(qkv.chunks_exact(3 * e).zip(attn.chunks_exact_mut(e)))
        {
            let cache = &caches[lane.cache];
            let (keys, values) = (&cache.keys[layer], &cache.values[layer]);
            let visible = lane.pos + 1;
            for h in 0..c.n_head {
                let q = &row[h * d..(h + 1) * d];
                let k_h = head_rows(keys.index_axis(Axis(0), h));
                let v_h = head_rows(values.index_axis(Axis(0), h));
                let weights = &mut s.scores[..visible];
                scores(run.path, q, &k_h[..visible * d], scale, weights);
                softmax(run.path, weights);
                let out = &mut out_row[h * d..(h + 1) * d];
                weighted_sum(run.path, weights, &v_h[..visible * d], out);
            }
        }
        let proj = &mut s.proj[..t_len * e];
        apply(&block.attn_proj, attn, proj, run, &mut s.tmp);
        add_assign(x, proj);

        layer_norm(
            x,
            as_slice(&block.ln_2.weight),
            as_slice(&block.ln_2.bias),
            c.layer_norm_epsilon,
            normed,
        );
        let hidden = &mut s.hidden[..t_len * c.n_inner];
        apply(&block.c_fc, normed, hidden, run, &mut s.tmp);
        activate(run.path, c.activation, hidden);
        apply(&block.mlp_proj, hidden, proj, run, &mut s.tmp);
        add_assign(x, proj);
    }
    for lane in lanes {
        let cache = &mut caches[lane.cache];
        cache.len = cache.len.max(lane.pos + 1);
    }
}

fn apply(layer: &Linear, x: &[f32], y: &mut [f32], run: Run, tmp: &mut [f32]) {
    let (n_out, n_in) = layer.weight.dim();
    let (w, b) = (layer.weight.rows(), Some(as_slice(&layer.bias)));
    if run.workers.count() > 1 {
        linear_threaded(run.path, x, w, b, y, n_in, run.workers, tmp);
    } else {
        linear(run.path, x, w, b, y, n_out, n_in);
    }
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

fn as_slice(v: &ndarray::Array1<f32>) -> &[f32] {
    v.as_slice().unwrap_or_else(|| unreachable!("weights are stored contiguously"))
}

/// One head's cache, `[n_positions, head_dim]`, as a flat slice.
fn head_rows<'a>(view: ArrayView2<'a, f32>) -> &'a [f32] {
    view.to_slice().unwrap_or_else(|| unreachable!("the cache is stored row-major"))
}
