//! Explaining a mismatch (SPEC §6): the ways a sender or a proxy commonly
//! gets a signature wrong (the key, `t`, the body's bytes, its JSON
//! re-serialized, or two of these), each tried within a [`ForensicsBudget`]
//! and named when its digest matches.

use std::time::Duration;

use super::header::{MILLIS_THRESHOLD, ParsedHeader};
use super::secret::{DIGEST_LEN, SECRET_PREFIX, Secret, any_digest_matches, digest, hmac_parts};
use crate::json_style::{self, JsonStyle};

/// Bodies up to this size also get the costlier combined forensics
/// (each key variant with each body variant). Larger bodies get single
/// alterations only, so a hostile sender cannot buy much CPU per request.
const COMBINED_FORENSICS_MAX_BODY: usize = 64 * 1024;

/// What explaining one mismatch may cost, whatever the body: a stranger
/// on the tunnel chooses the body, and without a budget a 1 MB body nested
/// 126 levels deep costs 3 s and 690 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForensicsBudget {
    /// Bodies larger than this get only the alterations that copy nothing
    /// (other keys, no `t.` prefix, `t` in milliseconds).
    pub(crate) max_body: usize,
    /// JSON is re-serialized only when its bytes nest at most this deep…
    pub(crate) max_json_depth: usize,
    /// …and hold at most this many values: checked on the bytes, before a
    /// `serde_json::Value` is built.
    pub(crate) max_json_values: usize,
    /// Each altered body is at most this many bytes; a re-serialization
    /// that grows past it is abandoned.
    pub(crate) max_variant_bytes: usize,
    /// Wall time, checked between alterations by the caller's clock.
    pub(crate) time: Duration,
}

impl ForensicsBudget {
    pub(crate) const DEFAULT: Self = Self {
        max_body: 1024 * 1024,
        max_json_depth: json_style::MAX_DEPTH,
        max_json_values: 100_000,
        max_variant_bytes: 4 * 1024 * 1024,
        time: Duration::from_millis(500),
    };
}

/// What the forensics of one mismatch found, and what they cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Explanation {
    /// The alterations whose digest matches, one sentence each.
    pub(super) hints: Vec<String>,
    /// Why the explanation stopped short, when it did: hints.
    pub(super) cut: Vec<String>,
    /// The largest altered body built, in bytes.
    pub(super) largest_variant: usize,
    /// Altered bodies built and hashed.
    pub(super) variants_tried: usize,
}

/// A way the key may have been used instead of the whole secret string.
struct KeyVariant {
    key: Vec<u8>,
    /// Completes "the digest matches if the secret is used …".
    how: &'static str,
    /// What to do about it.
    advice: &'static str,
}

fn key_variants(secret: &Secret) -> Vec<KeyVariant> {
    use base64::Engine as _;
    let mut variants = Vec::new();
    let base64_part = if let Some(rest) = secret.text.strip_prefix(SECRET_PREFIX) {
        variants.push(KeyVariant {
            key: rest.as_bytes().to_vec(),
            how: "without its whsec_ prefix",
            advice: "the sender must key HMAC with the whole secret string, prefix included",
        });
        rest
    } else {
        variants.push(KeyVariant {
            key: format!("{SECRET_PREFIX}{}", secret.text).into_bytes(),
            how: "with the whsec_ prefix in front",
            advice: "the secret configured here lacks it; configure the whole whsec_… string",
        });
        secret.text.as_str()
    };
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(base64_part) {
        variants.push(KeyVariant {
            key: decoded,
            how: "base64-decoded after whsec_ (the Standard Webhooks way)",
            advice: "Danube keys HMAC with the whole secret string as UTF-8 bytes, not decoded",
        });
    }
    variants
}

/// A way the body may have changed between the signer and here, built
/// one at a time so an explanation holds at most two altered bodies (a
/// pair's first step and its second).
#[derive(Debug, Clone, Copy)]
enum BodyAlteration {
    NewlineAdded,
    NewlineRemoved,
    CrlfToLf,
    LfToCrlf,
    BomAdded,
    BomStripped,
    Reserialized(JsonStyle),
}

impl BodyAlteration {
    const BYTES: [Self; 6] = [
        Self::NewlineAdded,
        Self::NewlineRemoved,
        Self::CrlfToLf,
        Self::LfToCrlf,
        Self::BomAdded,
        Self::BomStripped,
    ];

    /// Completes "the digest matches if the body …".
    fn how(self) -> String {
        match self {
            Self::NewlineAdded => "had no trailing newline: one was added after signing".into(),
            Self::NewlineRemoved => {
                "ended with a newline: the trailing newline was removed after signing".into()
            }
            Self::CrlfToLf => "had LF line ends: they were turned into CRLF after signing".into(),
            Self::LfToCrlf => "had CRLF line ends: they were turned into LF after signing".into(),
            Self::BomAdded => "had no byte-order mark: a BOM was added in front after signing; \
                               strip it only if the sender never signed it"
                .into(),
            Self::BomStripped => {
                "started with a byte-order mark (BOM) that was stripped after signing".into()
            }
            Self::Reserialized(style) => format!(
                "is re-serialized as {}: a proxy or body parser changed the bytes; verify the \
                 raw body exactly as received, before any JSON parsing",
                style.describe()
            ),
        }
    }

    /// Which change it is: a pair never holds two of one kind (a newline
    /// added and one removed undo each other).
    fn kind(self) -> u8 {
        match self {
            Self::NewlineAdded | Self::NewlineRemoved => 0,
            Self::CrlfToLf | Self::LfToCrlf => 1,
            Self::BomAdded | Self::BomStripped => 2,
            Self::Reserialized(_) => 3,
        }
    }

    /// What was done to the body after signing, to follow "was".
    fn done(self) -> &'static str {
        match self {
            Self::NewlineAdded => "given a trailing newline",
            Self::NewlineRemoved => "stripped of its trailing newline",
            Self::CrlfToLf => "given CRLF line ends",
            Self::LfToCrlf => "given LF line ends",
            Self::BomAdded => "given a byte-order mark (BOM) in front",
            Self::BomStripped => "stripped of its byte-order mark (BOM)",
            Self::Reserialized(_) => "re-serialized",
        }
    }

    /// How the signed body differed from a serializer's output, when this
    /// is undone on a re-serialized body: what the re-serialization lost.
    /// `None` for what no serializer's output has to undo.
    fn signed_with(self) -> Option<&'static str> {
        match self {
            Self::NewlineRemoved => Some("ending in a newline"),
            Self::LfToCrlf => Some("with CRLF line ends"),
            Self::BomStripped => Some("starting with a byte-order mark (BOM)"),
            _ => None,
        }
    }

    /// At most how long [`Self::undo`] makes `body`, for a byte change:
    /// known before it is built.
    fn undone_len(self, body: &[u8]) -> usize {
        match self {
            Self::NewlineRemoved => body.len() + 1,
            Self::LfToCrlf if !has_crlf(body) => {
                // One CR for each LF: as many as the pieces between them, less one.
                body.len() + body.split(|&b| b == b'\n').count() - 1
            }
            Self::BomStripped => body.len() + 3,
            _ => body.len(),
        }
    }

    /// The body as the signer would have had it, or `None` when the
    /// alteration does not apply. A re-serialization that would grow past
    /// `max_bytes` gives an empty body.
    fn undo(
        self,
        body: &[u8],
        json: Option<&serde_json::Value>,
        max_bytes: usize,
    ) -> Option<Vec<u8>> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        match self {
            Self::NewlineAdded => body
                .strip_suffix(b"\r\n")
                .or_else(|| body.strip_suffix(b"\n"))
                .map(<[u8]>::to_vec),
            Self::NewlineRemoved => Some([body, b"\n"].concat()),
            Self::CrlfToLf => has_crlf(body).then(|| replace_bytes(body, b"\r\n", b"\n")),
            Self::LfToCrlf => (!has_crlf(body) && body.contains(&b'\n'))
                .then(|| replace_bytes(body, b"\n", b"\r\n")),
            Self::BomAdded => body.strip_prefix(BOM).map(<[u8]>::to_vec),
            Self::BomStripped => (!body.starts_with(BOM)).then(|| [BOM, body].concat()),
            Self::Reserialized(style) => {
                let (text, cut) = json_style::render_capped(json?, style, max_bytes);
                // Cut text is a prefix, which matches nothing: an empty
                // body stands for "too large" (it is never the body tried).
                Some(if cut { Vec::new() } else { text.into_bytes() })
            }
        }
    }
}

/// Whether `body` has a CRLF; a body without CR (most) is told by memchr.
fn has_crlf(body: &[u8]) -> bool {
    body.contains(&b'\r') && body.windows(2).any(|w| w == b"\r\n")
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + haystack.len() / 16);
    let mut rest = haystack;
    while let Some(pos) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(to);
        rest = &rest[pos + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The alterations worth trying on `body`, and the body as JSON when the
/// re-serializations are among them: only when its bytes show it nests
/// and spreads within `budget`, since the `Value` costs many times the
/// bytes. Why they are not is pushed onto `cut`.
fn alterations_for(
    body: &[u8],
    budget: &ForensicsBudget,
    cut: &mut Vec<String>,
) -> (Vec<BodyAlteration>, Option<serde_json::Value>) {
    let mut alterations: Vec<BodyAlteration> = BodyAlteration::BYTES.to_vec();
    // A BOM in front is no part of the JSON: a body given one after it was
    // re-serialized still parses past it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let looks_like_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    if !looks_like_json {
        return (alterations, None);
    }
    match json_style::check_shape(body, budget.max_json_depth, budget.max_json_values) {
        Ok(()) => {
            let json = serde_json::from_slice::<serde_json::Value>(body).ok();
            if json.is_some() {
                alterations.extend(JsonStyle::ALL.map(BodyAlteration::Reserialized));
            }
            (alterations, json)
        }
        Err(exceeded) => {
            cut.push(format!(
                "forensics stopped short: {exceeded} (the budget), so re-serialized JSON was \
                 not tried"
            ));
            (alterations, None)
        }
    }
}

/// "the secret", or "the secret whsec_…abcd" when there are several.
fn secret_name(secret: &Secret, count: usize) -> String {
    if count > 1 {
        format!("the secret {}", secret.fingerprint())
    } else {
        "the secret".to_string()
    }
}

/// The alterations of key and `t` that leave the body as it is.
fn unaltered_body_hints(
    secrets: &[Secret],
    keys: &[Vec<KeyVariant>],
    parsed: &ParsedHeader,
    body: &[u8],
) -> Vec<String> {
    let matches = |expected: [u8; DIGEST_LEN]| any_digest_matches(&parsed.digests, &expected);
    let t = parsed.t_text.as_str();
    let mut hints = Vec::new();
    for (secret, keys) in secrets.iter().zip(keys) {
        for key in keys {
            if matches(digest(&key.key, t, body)) {
                hints.push(format!(
                    "the digest matches if {} is used {}: {}",
                    secret_name(secret, secrets.len()),
                    key.how,
                    key.advice
                ));
            }
        }
        if matches(hmac_parts(secret.key(), &[body])) {
            hints.push(
                "the digest matches the body signed without the \"<t>.\" prefix: the signed \
                 content must be t, a dot, then the raw body"
                    .into(),
            );
        }
        for (alt_t, how) in timestamp_unit_variants(parsed.t) {
            if matches(secret.digest(&alt_t, body)) {
                hints.push(format!("the digest matches if t is {how}"));
            }
        }
    }
    hints
}

/// Try each known alteration, cheapest first, and name those whose digest
/// matches the header; when none does, try them in pairs. Stop where
/// `budget` says, and say why.
///
/// Two byte changes are tried before the re-serializations: parsing
/// skips whitespace and a BOM, so re-serializing a body given a newline
/// and a BOM can give back the bytes signed, and would name the wrong
/// cause.
pub(super) fn explain_mismatch(
    secrets: &[Secret],
    parsed: &ParsedHeader,
    body: &[u8],
    budget: &ForensicsBudget,
    out_of_time: &mut dyn FnMut() -> bool,
) -> Explanation {
    let keys: Vec<Vec<KeyVariant>> = secrets.iter().map(key_variants).collect();
    let mut found = Explanation {
        // First what copies nothing: each costs one HMAC of the body.
        hints: unaltered_body_hints(secrets, &keys, parsed, body),
        ..Explanation::default()
    };

    // Then the altered bodies, one at a time.
    if body.len() > budget.max_body {
        found.cut.push(format!(
            "forensics stopped short: the body is {} bytes, over the {}-byte budget for \
             altering it, so line ends, BOM and re-serialized JSON were not tried",
            body.len(),
            budget.max_body
        ));
        return found;
    }
    let (alterations, json) = alterations_for(body, budget, &mut found.cut);
    let combine = body.len() <= COMBINED_FORENSICS_MAX_BODY;
    let (byte_pairs, json_pairs) = if combine {
        pairs_of(&alterations)
    } else {
        (Vec::new(), Vec::new())
    };
    let (bytes, styles): (Vec<_>, Vec<_>) = alterations
        .into_iter()
        .partition(|alteration| !matches!(alteration, BodyAlteration::Reserialized(_)));
    let mut trial = Trial {
        secrets,
        keys: &keys,
        parsed,
        body,
        json: json.as_ref(),
        budget,
        combine,
        seen: Vec::new(),
        found,
        tried: 0,
        total: bytes.len() + styles.len() + byte_pairs.len() + json_pairs.len(),
    };
    let explained = |trial: &Trial| !trial.found.hints.is_empty();
    if !trial.singles(&bytes, out_of_time) {
        return trial.found;
    }
    if !explained(&trial) && !trial.pairs(&byte_pairs, out_of_time) {
        return trial.found;
    }
    if !trial.singles(&styles, out_of_time) || explained(&trial) {
        return trial.found;
    }
    if !combine {
        trial.found.cut.push(format!(
            "forensics stopped short: the body is {} bytes, over the {}-byte limit for \
             trying alterations in pairs or with another key, so each was tried alone",
            body.len(),
            COMBINED_FORENSICS_MAX_BODY
        ));
    }
    trial.pairs(&json_pairs, out_of_time);
    trial.found
}

/// An alteration undone on a body already undone of another.
type Pair = (BodyAlteration, BodyAlteration);

/// The pairs worth trying when no single alteration explains a body,
/// each as (later, earlier): the later one is undone first. First two
/// byte changes of different kinds (a newline added and one removed undo
/// each other), in both orders; then a re-serialization of a body signed
/// with what no serializer writes (a trailing newline, CRLF, a BOM). A
/// byte change made after the re-serialization needs no pair: the JSON is
/// parsed past it, and [`received_form`] names it. Never two
/// re-serializations: the second would hide the first.
fn pairs_of(singles: &[BodyAlteration]) -> (Vec<Pair>, Vec<Pair>) {
    let bytes = BodyAlteration::BYTES;
    let mut byte_pairs = Vec::new();
    for later in bytes {
        for earlier in bytes {
            if later.kind() != earlier.kind() {
                byte_pairs.push((later, earlier));
            }
        }
    }
    let mut json_pairs = Vec::new();
    for &later in singles {
        if matches!(later, BodyAlteration::Reserialized(_)) {
            for earlier in bytes {
                if earlier.signed_with().is_some() {
                    json_pairs.push((later, earlier));
                }
            }
        }
    }
    (byte_pairs, json_pairs)
}

/// One explanation under way: what the altered bodies are compared with,
/// and what was found so far.
struct Trial<'a> {
    secrets: &'a [Secret],
    keys: &'a [Vec<KeyVariant>],
    parsed: &'a ParsedHeader,
    body: &'a [u8],
    json: Option<&'a serde_json::Value>,
    budget: &'a ForensicsBudget,
    /// Whether the body is small enough for each key variant with each
    /// altered body.
    combine: bool,
    /// Digests (with the first secret) of the bodies tried, so two ways
    /// to the same bytes are named once.
    seen: Vec<[u8; DIGEST_LEN]>,
    found: Explanation,
    /// Altered bodies tried (or found not to apply) so far, of `total`.
    tried: usize,
    total: usize,
}

impl Trial<'_> {
    fn matches(&self, expected: &[u8; DIGEST_LEN]) -> bool {
        any_digest_matches(&self.parsed.digests, expected)
    }

    /// Each of `alterations` alone; `false` when time ran out (said in
    /// the cut).
    fn singles(
        &mut self,
        alterations: &[BodyAlteration],
        out_of_time: &mut dyn FnMut() -> bool,
    ) -> bool {
        for &alteration in alterations {
            if self.stop(out_of_time) {
                return false;
            }
            self.single(alteration);
        }
        true
    }

    /// Each of `pairs`; `false` when time ran out (said in the cut).
    fn pairs(&mut self, pairs: &[Pair], out_of_time: &mut dyn FnMut() -> bool) -> bool {
        for &(later, earlier) in pairs {
            if self.stop(out_of_time) {
                return false;
            }
            self.pair(later, earlier);
        }
        true
    }

    /// Whether time is up before the next attempt; says so.
    fn stop(&mut self, out_of_time: &mut dyn FnMut() -> bool) -> bool {
        if out_of_time() {
            self.found.cut.push(format!(
                "forensics stopped after {} ms (the time budget): {} of {} altered bodies \
                 tried",
                self.budget.time.as_millis(),
                self.tried,
                self.total
            ));
            return true;
        }
        self.tried += 1;
        false
    }

    /// `alteration` undone on `input`, when it applies and stays within the
    /// budget; a body over it is noted in the cut, once for each wording.
    fn undo(&mut self, alteration: BodyAlteration, input: &[u8]) -> Option<Vec<u8>> {
        let max = self.budget.max_variant_bytes;
        let variant = match alteration {
            // An empty render stands for one cut at the budget.
            BodyAlteration::Reserialized(_) => {
                Some(alteration.undo(input, self.json, max)?).filter(|text| !text.is_empty())
            }
            _ if alteration.undone_len(input) > max => None,
            _ => return alteration.undo(input, None, max),
        };
        if variant.is_none() {
            let note = format!(
                "forensics stopped short: the body that {} would be over the {max}-byte budget \
                 for an altered body, so it was not tried",
                alteration.how().split(':').next().unwrap_or_default(),
            );
            if !self.found.cut.contains(&note) {
                self.found.cut.push(note);
            }
        }
        variant
    }

    /// The first secret's digest of `variant` when it is a body not tried
    /// yet, counted as tried.
    fn fresh(&mut self, variant: &[u8]) -> Option<[u8; DIGEST_LEN]> {
        if variant == self.body {
            return None;
        }
        let digest = self.secrets[0].digest(&self.parsed.t_text, variant);
        if self.seen.contains(&digest) {
            return None;
        }
        self.seen.push(digest);
        self.found.variants_tried += 1;
        self.found.largest_variant = self.found.largest_variant.max(variant.len());
        Some(digest)
    }

    /// Each secret's digest of `variant` (the first one's is `first`).
    fn secrets_matching(&self, variant: &[u8], first: [u8; DIGEST_LEN]) -> Vec<usize> {
        let t = self.parsed.t_text.as_str();
        (0..self.secrets.len())
            .filter(|&index| {
                let plain = if index == 0 {
                    first
                } else {
                    self.secrets[index].digest(t, variant)
                };
                self.matches(&plain)
            })
            .collect()
    }

    fn single(&mut self, alteration: BodyAlteration) {
        let Some(variant) = self.undo(alteration, self.body) else {
            return;
        };
        let Some(first) = self.fresh(&variant) else {
            return;
        };
        let how = alteration.how();
        if !self.secrets_matching(&variant, first).is_empty() {
            let hint = match alteration {
                BodyAlteration::Reserialized(style) => self.reserialized_hint(style, None),
                _ => format!("the digest matches if the body {how}"),
            };
            self.found.hints.push(hint);
        }
        if !self.combine {
            return;
        }
        let t = self.parsed.t_text.as_str();
        for (secret, keys) in self.secrets.iter().zip(self.keys) {
            for key in keys {
                if self.matches(&digest(&key.key, t, &variant)) {
                    self.found.hints.push(format!(
                        "the digest matches if {} is used {} and the body {how}",
                        secret_name(secret, self.secrets.len()),
                        key.how,
                    ));
                }
            }
        }
    }

    /// Two alterations, each of the configured secrets as they are: a key
    /// variant on top of two body changes is one guess too many.
    fn pair(&mut self, later: BodyAlteration, earlier: BodyAlteration) {
        let Some(middle) = self.undo(later, self.body) else {
            return;
        };
        let Some(variant) = self.undo(earlier, &middle) else {
            return;
        };
        drop(middle);
        let Some(first) = self.fresh(&variant) else {
            return;
        };
        if self.secrets_matching(&variant, first).is_empty() {
            return;
        }
        let hint = match later {
            BodyAlteration::Reserialized(style) => self.reserialized_hint(style, Some(earlier)),
            _ => format!(
                "the digest matches if the body was {} and {} after signing: something \
                 between the sender and here changed the bytes twice; verify the raw body \
                 exactly as received",
                earlier.done(),
                later.done()
            ),
        };
        self.found.hints.push(hint);
    }

    /// The hint for a body signed as `signed` JSON (with what `earlier`
    /// undid, when it is a pair) and received re-serialized: it names how
    /// the body arrived when [`received_form`] can tell.
    fn reserialized_hint(&self, signed: JsonStyle, earlier: Option<BodyAlteration>) -> String {
        let received = self
            .json
            .filter(|_| self.combine)
            .and_then(|json| received_form(self.body, json));
        let later = received.and_then(|(_, change)| change);
        let signed_with = earlier.and_then(BodyAlteration::signed_with);
        if signed_with.is_none() && later.is_none() {
            return format!(
                "the digest matches if the body {}",
                BodyAlteration::Reserialized(signed).how()
            );
        }
        let mut hint = format!(
            "the digest matches if the body, signed as {}",
            signed.describe()
        );
        for part in [
            signed_with.map(|with| format!(" {with}")),
            Some(", was re-serialized".to_string()),
            received.map(|(style, _)| format!(" as {}", style.describe())),
            later.map(|change| format!(" and {}", change.done())),
        ]
        .into_iter()
        .flatten()
        {
            hint.push_str(&part);
        }
        hint.push_str(
            " after signing: a proxy or body parser changed the bytes; verify the raw body \
             exactly as received, before any JSON parsing",
        );
        hint
    }
}

/// How a re-serializer wrote `body`: the style whose output it is, and
/// the byte change made to that output afterwards (a trailing newline, a
/// BOM, CRLF), when one of the known ones makes it so. Each style is
/// rendered once, cut just past the body's size: a longer text cannot be it.
fn received_form(
    body: &[u8],
    json: &serde_json::Value,
) -> Option<(JsonStyle, Option<BodyAlteration>)> {
    use BodyAlteration::{BomAdded, CrlfToLf, NewlineAdded};
    let undone: Vec<(BodyAlteration, Vec<u8>)> = [NewlineAdded, BomAdded, CrlfToLf]
        .into_iter()
        .filter_map(|change| Some((change, change.undo(body, None, body.len())?)))
        .collect();
    JsonStyle::ALL.into_iter().find_map(|style| {
        let (text, cut) = json_style::render_capped(json, style, body.len());
        if cut {
            return None;
        }
        if text.as_bytes() == body {
            return Some((style, None));
        }
        undone
            .iter()
            .find(|(_, bytes)| bytes == text.as_bytes())
            .map(|(change, _)| (style, Some(*change)))
    })
}

fn timestamp_unit_variants(t: i64) -> Vec<(String, &'static str)> {
    let mut variants = Vec::new();
    if let Some(millis) = t.checked_mul(1000) {
        variants.push((
            millis.to_string(),
            "taken in milliseconds for signing while the header carries seconds",
        ));
    }
    if t > MILLIS_THRESHOLD {
        variants.push((
            (t / 1000).to_string(),
            "taken in seconds for signing while the header carries milliseconds",
        ));
    }
    variants
}

/// A hint when `Content-Length` disagrees with the bytes received: a proxy
/// or client changed the body, or the request was cut short.
pub(crate) fn content_length_hint(declared: Option<&str>, received: usize) -> Option<String> {
    let declared = declared?.trim();
    match declared.parse::<u64>() {
        Ok(n) if n == received as u64 => None,
        Ok(n) => Some(format!(
            "Content-Length says {n} bytes but {received} arrived: something changed or cut the body"
        )),
        Err(_) => Some(format!(
            "Content-Length is {declared:?}, not a number of bytes"
        )),
    }
}

#[cfg(test)]
mod tests;
