//! JSON log lines written straight into one buffer per line: the same lines
//! as tracing-subscriber's JSON formatter (same keys, order and escaping,
//! proved by the tests below), at a fraction of its cost per RPC.
//!
//! tracing-subscriber's formatter writes through a `fmt::Write` adaptor
//! (hundreds of small UTF-8-checked writes per line), keeps each span's
//! fields as a JSON string that it parses and re-serialises on every
//! `Span::record`, and parses it once more for every event in the span. With
//! two lines per RPC that was ~15 % of the facade's instructions per request.
//! Here a span keeps its rendered values and their names; an event renders
//! its fields once, into a per-thread buffer written with one `write_all`.
//!
//! A line: `{"timestamp":…,"level":…,"fields":{…},"target":…,"span":{…}}`.
//! The event's fields come in the order they were recorded (flattened to the
//! top level for the audit trail); the span's, when there is one and it is
//! asked for, sorted by name and followed by `"name"`.

use std::{cell::RefCell, fmt, io::Write as _, ops::Range};

use tracing::{
    field::{Field, Visit},
    span::{Attributes, Id, Record},
    Event, Subscriber,
};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::{
    fmt::{
        format::Writer,
        time::{FormatTime, SystemTime},
        MakeWriter,
    },
    layer::Context,
    registry::LookupSpan,
    Layer,
};

/// The JSON log layer: one line per event on the writer `W`.
pub struct JsonLayer<W> {
    make_writer: W,
    /// The event's fields at the top level instead of under `"fields"`.
    flatten: bool,
    /// The innermost span's fields under `"span"`.
    current_span: bool,
}

impl<W> JsonLayer<W> {
    /// Lines on `make_writer`, fields under `"fields"`, no span.
    pub fn new(make_writer: W) -> Self {
        Self {
            make_writer,
            flatten: false,
            current_span: false,
        }
    }

    /// The event's fields at the top level of the line.
    pub fn flatten_event(mut self, flatten: bool) -> Self {
        self.flatten = flatten;
        self
    }

    /// The innermost span's fields (and name) under `"span"`.
    pub fn with_current_span(mut self, current_span: bool) -> Self {
        self.current_span = current_span;
        self
    }
}

/// A span's fields as tracing-subscriber's `JsonFields` keeps them: the last
/// value recorded for each name (debug values of `log.` fields dropped,
/// `r#` stripped), rendered as JSON in `text`.
#[derive(Default)]
struct SpanFields {
    text: Vec<u8>,
    fields: Vec<(&'static str, Range<usize>)>,
}

impl SpanFields {
    fn set(&mut self, name: &'static str, render: impl FnOnce(&mut Vec<u8>)) {
        let start = self.text.len();
        render(&mut self.text);
        let range = start..self.text.len();
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = range,
            None => self.fields.push((name, range)),
        }
    }

    /// `"name":value` pairs sorted by name, each followed by a comma.
    fn write_sorted(&self, out: &mut Vec<u8>) {
        let mut order: Vec<usize> = (0..self.fields.len()).collect();
        order.sort_unstable_by_key(|&i| self.fields[i].0);
        for i in order {
            let (name, range) = &self.fields[i];
            json(out, name);
            out.push(b':');
            out.extend_from_slice(&self.text[range.clone()]);
            out.push(b',');
        }
    }
}

impl Visit for SpanFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), |out| json(out, &value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), |out| json(out, &value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), |out| json(out, &value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), |out| json(out, &value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), |out| json(out, value));
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.set(field.name(), |out| json(out, value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.set(name, |out| json(out, &format_args!("{value:?}")));
    }
}

/// An event's fields in the order they come, as `"name":value,` pairs.
struct EventFields<'a>(&'a mut Vec<u8>);

impl EventFields<'_> {
    fn entry(&mut self, name: &str, value: &(impl serde::Serialize + ?Sized)) {
        json(self.0, name);
        self.0.push(b':');
        json(self.0, value);
        self.0.push(b',');
    }
}

impl Visit for EventFields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field.name(), &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field.name(), &format_args!("{value:?}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field.name(), &value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field.name(), &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field.name(), &value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field.name(), value);
    }
}

/// `value` as JSON onto `out`: serde_json's escaping and number forms.
fn json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Writing into a Vec cannot fail; a value whose Serialize fails (none of
    // the ones above) is written as null so the line stays valid JSON.
    let mark = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"null");
    }
}

/// Replaces the trailing comma of a list of entries by `close`, or appends
/// it when the list is empty (`open` was the last byte).
fn close(out: &mut Vec<u8>, byte: u8) {
    match out.last_mut() {
        Some(last @ b',') => *last = byte,
        _ => out.push(byte),
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Lines longer than this give their buffer back after writing.
const KEEP_BUFFER: usize = 16 * 1024;

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.current_span {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        // `replace`, not `insert` (which panics on a second one): a second
        // layer of this kind over the same spans keeps one set of fields.
        span.extensions_mut().replace(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !self.current_span {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        LINE.with(|line| {
            // A log line written while writing one (a writer that logs)
            // gets a buffer of its own.
            let mut fresh = Vec::new();
            let mut borrowed = line.try_borrow_mut();
            let out = match borrowed.as_deref_mut() {
                Ok(buffer) => buffer,
                Err(_) => &mut fresh,
            };
            out.clear();
            self.render(event, &ctx, out);
            let _ = self
                .make_writer
                .make_writer_for(event.metadata())
                .write_all(out);
            if out.capacity() > KEEP_BUFFER {
                *out = Vec::new();
            }
        });
    }
}

impl<W> JsonLayer<W> {
    fn render<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, out: &mut Vec<u8>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

        let mut timestamp = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        out.extend_from_slice(b"{\"timestamp\":");
        json(out, &timestamp);
        out.extend_from_slice(b",\"level\":");
        json(out, meta.level().as_str());
        out.push(b',');
        if self.flatten {
            event.record(&mut EventFields(out));
        } else {
            out.extend_from_slice(b"\"fields\":{");
            event.record(&mut EventFields(out));
            close(out, b'}');
            out.push(b',');
        }
        out.extend_from_slice(b"\"target\":");
        json(out, meta.target());
        if self.current_span {
            // As tracing-subscriber picks it: the explicit parent, else
            // the current span.
            let span = event
                .parent()
                .and_then(|id| ctx.span(id))
                .or_else(|| ctx.lookup_current());
            if let Some(span) = span {
                out.extend_from_slice(b",\"span\":{");
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    fields.write_sorted(out);
                }
                out.extend_from_slice(b"\"name\":");
                json(out, span.name());
                out.push(b'}');
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

#[cfg(test)]
mod tests {
    //! The same events and spans through tracing-subscriber's JSON formatter
    //! and through [`JsonLayer`]: the lines must be the same bytes, the
    //! timestamp aside.

    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use tracing::field::Empty;
    use tracing_subscriber::{layer::SubscriberExt as _, registry};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(without_timestamp)
                .collect()
        }
    }

    /// The line with its timestamp value blanked (it differs by the clock).
    fn without_timestamp(line: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let stamp = value["timestamp"].as_str().expect("a timestamp");
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");
        line.replacen(stamp, "T", 1)
    }

    #[derive(Debug)]
    struct Odd {
        #[allow(dead_code)]
        text: &'static str,
    }

    /// Events and spans with every kind of value and awkward text.
    fn emit() {
        let awkward =
            "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 🦀";
        tracing::info!("no span, no fields");
        tracing::warn!(
            answer = 42_i64,
            big = u64::MAX,
            ratio = 0.25_f64,
            nan = f64::NAN,
            on = true,
            text = awkward,
            "fields {}",
            "formatted"
        );
        tracing::error!(odd = ?Odd { text: awkward }, shown = %awkward, r#type = "raw");
        let span = tracing::info_span!(
            "rpc",
            rpc.method = "Get",
            grpc.code = Empty,
            z.last = 1_u64,
            a.first = ?Odd { text: "x" },
            r#type = ?"raw",
            ratio = 1e20_f64,
        );
        let _entered = span.enter();
        tracing::info!("in the span before any record");
        span.record("grpc.code", "OK");
        span.record("grpc.code", "INTERNAL");
        span.record("z.last", 7_u64);
        tracing::info!(target: "audit", event = "send", caller = Option::<&str>::None, replay = Some(true), "audit");
        let inner = tracing::debug_span!("inner", level = "debug");
        inner.in_scope(|| tracing::info!(inner = true, "in the inner span"));
        let empty = tracing::info_span!("empty");
        empty.in_scope(|| tracing::info!(message = awkward));
    }

    fn compare(flatten: bool, current_span: bool) {
        let theirs = Buffer::default();
        let ours = Buffer::default();
        let reference = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .json()
            .flatten_event(flatten)
            .with_current_span(current_span)
            .with_span_list(false)
            .with_writer(theirs.clone());
        let mine = JsonLayer::new(ours.clone())
            .flatten_event(flatten)
            .with_current_span(current_span);
        let subscriber = registry().with(reference).with(mine);
        tracing::subscriber::with_default(subscriber, emit);
        let (theirs, ours) = (theirs.lines(), ours.lines());
        assert_eq!(theirs.len(), 7, "{theirs:#?}");
        for (t, o) in theirs.iter().zip(&ours) {
            assert_eq!(t, o);
        }
        assert_eq!(theirs.len(), ours.len());
    }

    #[test]
    fn same_lines_as_tracing_subscriber_with_span() {
        compare(false, true);
    }

    #[test]
    fn same_lines_as_tracing_subscriber_flattened() {
        compare(true, false);
    }

    #[test]
    fn same_lines_as_tracing_subscriber_plain() {
        compare(false, false);
    }
}
