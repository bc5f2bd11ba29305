//! The presets on real traces, with a log line before and after each, so both
//! boundaries are checked. Sources (public material, quoted as data; repeated
//! middle frames trimmed where marked):
//! - Java, Python (simple), Go: GoogleCloudPlatform/fluent-plugin-detect-exceptions,
//!   `test/plugin/test_exception_detector.rb` (`COMPLEX_JAVA_EXC`, `PYTHON_EXC`,
//!   `GO_EXC`, `GO_SIGNAL_EXC`).
//! - Java with `Suppressed:` and nested `Caused by:`: a Maven Surefire failure of a
//!   Testcontainers Kafka test quoted in a public issue write-up (NoClassDefFoundError
//!   `org/apache/commons/lang3/ArrayFill`).
//! - Java with an exception line under a log line: the slf4j example output in
//!   zjhgx/JavaAnalytics `src/main/java/basic/exception/StackTraceTest.java`.
//! - Python chained tracebacks: astral-sh/ruff issue thread on exception chaining
//!   (comment by @zanieb, 2023-11-17), "Implicit chaining" and "Explicit chaining".
//! - Go `fatal error` with `runtime stack:`: alessioalex/responsewriter-issue `README.md`.

use super::tests::{config, group};
use super::*;

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect()
}

/// `before`, `trace`, `after` must come out as exactly those three events; and
/// `trace` alone at the start of a file, then `after`, as two.
fn assert_one_event(mode: MultilineMode, before: &str, trace: &str, after: &str) {
    let alone = group(config(mode.clone()), &format!("{trace}{after}\n"));
    assert_eq!(texts(&alone), vec![trace.trim_end_matches('\n'), after]);
    let text = format!("{before}\n{trace}{after}\n");
    let events = group(config(mode), &text);
    let got = texts(&events);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0], before);
    assert_eq!(got[1], trace.trim_end_matches('\n'));
    assert_eq!(got[2], after);
    assert_eq!(events[1].lines as usize, trace.lines().count());
    assert_eq!(events[1].offset, events[0].end);
    assert_eq!(events[2].offset, events[1].end);
    assert!(!events[1].truncated);
}

const JAVA_SERVLET: &str = "\
javax.servlet.ServletException: Something bad happened
    at com.example.myproject.OpenSessionInViewFilter.doFilter(OpenSessionInViewFilter.java:60)
    at org.mortbay.jetty.servlet.ServletHandler$CachedChain.doFilter(ServletHandler.java:1157)
    at com.example.myproject.ExceptionHandlerFilter.doFilter(ExceptionHandlerFilter.java:28)
    at org.mortbay.jetty.servlet.ServletHandler.handle(ServletHandler.java:388)
    at org.mortbay.jetty.HttpConnection$RequestHandler.content(HttpConnection.java:943)
    at org.mortbay.thread.QueuedThreadPool$PoolThread.run(QueuedThreadPool.java:582)
Caused by: com.example.myproject.MyProjectServletException
    at com.example.myproject.MyServlet.doPost(MyServlet.java:169)
    at javax.servlet.http.HttpServlet.service(HttpServlet.java:727)
    at org.mortbay.jetty.servlet.ServletHolder.handle(ServletHolder.java:511)
    at com.example.myproject.OpenSessionInViewFilter.doFilter(OpenSessionInViewFilter.java:30)
    ... 27 more
";

const JAVA_SUPPRESSED: &str = "\
[ERROR] com.kotak.orchestrator.orchestrator.integration.config.KafkaIntegrationTest -- Time elapsed: 0.650 s <<< ERROR!
java.lang.NoClassDefFoundError: org/apache/commons/lang3/ArrayFill
\tat org.apache.commons.compress.archivers.tar.TarArchiveOutputStream.writeEOFRecord(TarArchiveOutputStream.java:677)
\tat org.testcontainers.containers.ContainerState.copyFileToContainer(ContainerState.java:356)
\tat org.testcontainers.containers.GenericContainer.start(GenericContainer.java:330)
\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1596)
\tSuppressed: java.lang.NoClassDefFoundError: org/apache/commons/lang3/ArrayFill
\t\tat org.apache.commons.compress.archivers.tar.TarArchiveOutputStream.close(TarArchiveOutputStream.java:303)
\t\tat org.testcontainers.containers.ContainerState.copyFileToContainer(ContainerState.java:363)
\t\t... 10 more
\tCaused by: java.lang.ClassNotFoundException: org.apache.commons.lang3.ArrayFill
\t\t... 14 more
Caused by: java.lang.ClassNotFoundException: org.apache.commons.lang3.ArrayFill
\tat java.base/jdk.internal.loader.BuiltinClassLoader.loadClass(BuiltinClassLoader.java:641)
\tat java.base/java.lang.ClassLoader.loadClass(ClassLoader.java:526)
\t... 13 more
";

const JAVA_SLF4J: &str = "\
2018-02-27 16:10:52 [http-nio-8080-exec-4] ERROR: com.opensymphony.xwork2.ActionSupport#error : cause
java.lang.Exception: cause
\tat com.cs.lexiao.business.platform.action.PlatformAction.throwException2(PlatformAction.java:75)
\tat com.cs.lexiao.business.platform.action.PlatformAction.main(PlatformAction.java:58)
\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
";

#[test]
fn java_trace_with_caused_by_and_more() {
    // `e.printStackTrace()`: the trace alone, after a complete event.
    assert_one_event(
        MultilineMode::Java,
        "2026-11-30 10:00:05,100 INFO [main] started\n\tat a.stray.Frame(F.java:1)",
        JAVA_SERVLET,
        "2026-11-30 10:00:06,001 INFO [main] next request",
    );
    // `log.error("request failed", e)`: the exception line joins its log line.
    let logged = format!("2026-11-30 10:00:05,789 ERROR [main] request failed\n{JAVA_SERVLET}");
    assert_one_event(
        MultilineMode::Java,
        "2026-11-30 10:00:05,100 INFO [main] started",
        &logged,
        "2026-11-30 10:00:06,001 INFO [main] next request",
    );
}

#[test]
fn java_log_line_with_suppressed_and_nested_causes() {
    assert_one_event(
        MultilineMode::Java,
        "[INFO] Running KafkaIntegrationTest",
        JAVA_SUPPRESSED,
        "[INFO] Results:",
    );
    assert_one_event(
        MultilineMode::Java,
        "2018-02-27 16:10:51 [http-nio-8080-exec-4] INFO: request",
        JAVA_SLF4J,
        "2018-02-27 16:10:53 [http-nio-8080-exec-5] INFO: request",
    );
}

#[test]
fn java_exception_line_joins_only_right_after_a_log_line() {
    // Two traces printed one after the other stay two events.
    let text = "java.lang.IllegalStateException: one\n\tat A.a(A.java:1)\njava.lang.IllegalStateException: two\n\tat B.b(B.java:2)\n";
    let events = group(config(MultilineMode::Java), text);
    assert_eq!(
        texts(&events),
        vec![
            "java.lang.IllegalStateException: one\n\tat A.a(A.java:1)",
            "java.lang.IllegalStateException: two\n\tat B.b(B.java:2)"
        ]
    );
    // Not exception lines: unqualified, or not ending in Exception/Error/Throwable.
    for line in [
        "IllegalStateException: boom",
        "com.example.Service: started",
        "java.lang.IllegalStateExceptions happen",
        ".lang.Error: x",
        "java..lang.Error",
    ] {
        assert!(!presets::is_java_exception_line(line.as_bytes()), "{line}");
    }
    for line in [
        "java.lang.IllegalStateException: boom",
        "java.lang.OutOfMemoryError",
        "com.example.Outer$InnerThrowable: x",
    ] {
        assert!(presets::is_java_exception_line(line.as_bytes()), "{line}");
    }
}

const PYTHON_SIMPLE: &str = r#"Traceback (most recent call last):
  File "/base/data/home/runtimes/python27/python27_lib/versions/third_party/webapp2-2.5.2/webapp2.py", line 1535, in __call__
    rv = self.handle_exception(request, response, e)
  File "/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py", line 17, in start
    return get()
  File "/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py", line 5, in get
    raise Exception('spam', 'eggs')
Exception: ('spam', 'eggs')
"#;

const PYTHON_IMPLICIT_CHAIN: &str = r#"Traceback (most recent call last):
  File "example.py", line 2, in <module>
    raise ValueError(1)
ValueError: 1

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "example.py", line 4, in <module>
    raise ValueError(2)
ValueError: 2
"#;

const PYTHON_EXPLICIT_CHAIN: &str = r#"Traceback (most recent call last):
  File "example.py", line 19, in <module>
    raise ValueError(1)
ValueError: 1

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "example.py", line 21, in <module>
    raise ValueError(2) from exc
ValueError: 2
"#;

#[test]
fn python_traceback_alone_and_under_a_log_line() {
    // An uncaught exception printed after a complete traceback.
    let earlier = PYTHON_SIMPLE.trim_end_matches('\n');
    assert_one_event(
        MultilineMode::Python,
        earlier,
        PYTHON_SIMPLE,
        "INFO:root:still serving",
    );
    // `logger.exception("request failed")` puts the traceback under its log line.
    let logged = format!("2026-11-30 10:00:05,789 ERROR [app] request failed\n{PYTHON_SIMPLE}");
    assert_one_event(
        MultilineMode::Python,
        "2026-11-30 10:00:05,100 INFO [app] request",
        &logged,
        "2026-11-30 10:00:06,000 INFO [app] request",
    );
}

#[test]
fn python_chained_tracebacks_are_one_event() {
    for trace in [PYTHON_IMPLICIT_CHAIN, PYTHON_EXPLICIT_CHAIN] {
        let logged = format!("2026-11-30 10:00:05 ERROR [worker] job failed\n{trace}");
        assert_one_event(
            MultilineMode::Python,
            "2026-11-30 10:00:05 WARNING retrying",
            &logged,
            "2026-11-30 10:00:06 INFO done",
        );
    }
}

#[test]
fn python_blank_line_after_a_traceback() {
    // One blank line may precede a chain, so it stays with the traceback; the
    // next log line still starts a new event.
    let text = format!("{PYTHON_SIMPLE}\n2026-11-30 10:00:06 INFO next\n");
    let events = group(config(MultilineMode::Python), &text);
    assert_eq!(events.len(), 2);
    assert!(texts(&events)[0].ends_with("Exception: ('spam', 'eggs')\n"));
    // Two tracebacks in a row without a chain line are two events.
    let text = format!("{PYTHON_SIMPLE}{PYTHON_SIMPLE}");
    assert_eq!(group(config(MultilineMode::Python), &text).len(), 2);
}

const GO_PANIC: &str = "\
panic: my panic

goroutine 4 [running]:
panic(0x45cb40, 0x47ad70)
\t/usr/local/go/src/runtime/panic.go:542 +0x46c fp=0xc42003f7b8 sp=0xc42003f710 pc=0x422f7c
main.main.func1(0xc420024120)
\tfoo.go:6 +0x39 fp=0xc42003f7d8 sp=0xc42003f7b8 pc=0x451339
runtime.goexit()
\t/usr/local/go/src/runtime/asm_amd64.s:2337 +0x1 fp=0xc42003f7e0 sp=0xc42003f7d8 pc=0x44b4d1
created by main.main
\tfoo.go:5 +0x58

goroutine 1 [chan receive]:
runtime.gopark(0x4739b8, 0xc420024178, 0x46fcd7, 0xc, 0xc420028e17, 0x3)
\t/usr/local/go/src/runtime/proc.go:280 +0x12c fp=0xc420053e30 sp=0xc420053e00 pc=0x42503c
runtime.chanrecv1(0xc420024120, 0x0)
\t/usr/local/go/src/runtime/chan.go:388 +0x2b fp=0xc420053f50 sp=0xc420053f20 pc=0x40439b
main.main()
\tfoo.go:9 +0x6f fp=0xc420053f80 sp=0xc420053f50 pc=0x4512ef

goroutine 3 [GC sweep wait]:
runtime.bgsweep(0xc42001e150)
\t/usr/local/go/src/runtime/mgcsweep.go:52 +0xa3 fp=0xc42003efd8 sp=0xc42003efa0 pc=0x419973
created by runtime.gcenable
\t/usr/local/go/src/runtime/mgc.go:216 +0x58
";

const GO_SIGNAL: &str = "\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x7fd34f]

goroutine 5 [running]:
panics.nilPtrDereference()
\tpanics/panics.go:33 +0x1f
panics.Wait()
\tpanics/panics.go:16 +0x3b
created by main.main
\tserver.go:20 +0x91
";

const GO_FATAL: &str = "\
runtime: goroutine stack exceeds 1000000000-byte limit
runtime: sp=0x14020160390 stack=[0x14020160000, 0x14040160000]
fatal error: stack overflow

runtime stack:
runtime.throw({0x1010f2717?, 0x200000001?})
\t/opt/homebrew/Cellar/go/1.22.1/libexec/src/runtime/panic.go:1023 +0x40 fp=0x17070ed50 sp=0x17070ed20 pc=0x100f3b080
runtime.morestack()
\t/opt/homebrew/Cellar/go/1.22.1/libexec/src/runtime/asm_arm64.s:341 +0x70 fp=0x17070ef00 sp=0x17070ef00 pc=0x100f6eef0

goroutine 21 gp=0x14000003880 m=4 mp=0x14000063b08 [running]:
git.v6.io/go-web/middleware.(*wrappedWriter).WriteHeader(0x140000c4000, 0x194)
\t/Users/alexandruvladutu/www/go-web/middleware/logging.go:14 +0x4c fp=0x14020160390 sp=0x14020160390 pc=0x1010ee80c
";

#[test]
fn go_panics_with_their_goroutine_dumps() {
    for trace in [GO_PANIC, GO_SIGNAL, GO_FATAL] {
        assert_one_event(
            MultilineMode::Go,
            "2024/04/11 10:35:53 200 GET /v1/item/10 22.667µs",
            trace,
            "2024/04/11 10:35:56 Server started on port :8080",
        );
    }
}

#[test]
fn go_runtime_lines_without_a_crash_stay_apart() {
    let text = "runtime: a\nruntime: b\n2024/04/11 10:35:56 ok\n";
    let events = group(config(MultilineMode::Go), text);
    assert_eq!(
        texts(&events),
        vec!["runtime: a\nruntime: b", "2024/04/11 10:35:56 ok"]
    );
}

#[test]
fn go_without_a_panic_groups_nothing() {
    let text = "main.main()\n\tfoo.go:9\n\n2024/04/11 10:35:56 ok (done)\n";
    assert_eq!(group(config(MultilineMode::Go), text).len(), 4);
    // A log line ending in `)` after a dump is not a frame.
    let text = format!("{GO_SIGNAL}2024/04/11 10:35:56 retry(3)\n");
    assert_eq!(group(config(MultilineMode::Go), &text).len(), 2);
}

#[test]
fn indented_and_regex_on_a_real_trace() {
    // The servlet trace is space-indented, so `indented` groups it too — except its
    // unindented `Caused by:` line, which starts a second event.
    let events = group(config(MultilineMode::Indented), JAVA_SERVLET);
    assert_eq!(events.len(), 2);
    assert!(texts(&events)[1].starts_with("Caused by: "));
    // A timestamp start pattern groups the Python chain under its log line.
    let start = regex::bytes::Regex::new(r"^\d{4}-\d{2}-\d{2} ").unwrap();
    let trace = format!("2026-11-30 10:00:05 ERROR failed\n{PYTHON_EXPLICIT_CHAIN}");
    assert_one_event(
        MultilineMode::Regex(start),
        "2026-11-30 10:00:04 INFO start",
        &trace,
        "2026-11-30 10:00:06 INFO done",
    );
}
