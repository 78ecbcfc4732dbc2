#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include <mpctl/common/roff.hpp>
#include <mpctl/common/roff_cli11.hpp>

namespace roff = mpctl::common::roff;

TEST_CASE("roff escapes what it would otherwise read as requests, escapes or typography", "[unit][roff]") {
    CHECK(roff::escape("plain words") == "plain words");
    CHECK(roff::escape("--no-autostart") == "\\-\\-no\\-autostart");
    CHECK(roff::escape("C:\\path") == "C:\\epath");
    CHECK(roff::escape(".hidden") == "\\&.hidden");
    CHECK(roff::escape("'quoted'") == "\\&\\(aqquoted\\(aq");
    CHECK(roff::escape("a\n.b\n'c") == "a\n\\&.b\n\\&\\(aqc");
    CHECK(roff::escape("mid.dle") == "mid.dle");
    CHECK(roff::escape("say \"hi\"") == "say \\(dqhi\\(dq");
    CHECK(roff::escape("`code`") == "\\(gacode\\(ga");
    CHECK(roff::escape("a  \n   \nb") == "a\n\nb");  // no line of spaces only
}

TEST_CASE("roff writes anything past ASCII as a named code point", "[unit][roff]") {
    CHECK(roff::escape("caf\xC3\xA9") == "caf\\[u00E9]");
    CHECK(roff::escape("a\xE2\x80\x94z") == "a\\[u2014]z");
    CHECK(roff::escape("\xF0\x9F\x99\x82") == "\\[u1F642]");
    CHECK(roff::escape("\xFF") == "\\[u00FF]");  // not UTF-8: a byte, as Latin-1
    CHECK(roff::escape("\xC3") == "\\[u00C3]");  // cut short
}

TEST_CASE("roff text sets `code` in bold, and never lets the bold run past its line", "[unit][roff]") {
    CHECK(roff::text("see `mpctl --help`") == "see \\fBmpctl \\-\\-help\\fR");
    CHECK(roff::text("`open\nnext") == "\\fBopen\\fR\nnext");
}

TEST_CASE("roff macros: title, sections, paragraphs, options", "[unit][roff]") {
    CHECK(roff::title("MPCTL", "1", "mpctl 0.1.0", "User Commands") ==
          ".TH \"MPCTL\" \"1\" \"\" \"mpctl 0.1.0\" \"User Commands\"\n.nh\n.ad l\n");
    CHECK(roff::section("EXIT STATUS") == ".SH \"EXIT STATUS\"\n");
    CHECK(roff::subsection("mpctl as-completed") == ".SS \"mpctl as\\-completed\"\n");
    CHECK(roff::paragraph("one\n\n.two") == ".PP\none\n\\&.two\n");
    CHECK(roff::option({"-s,--shared", "", "A shared lock"}) ==
          ".TP\n\\fB\\-s\\fR, \\fB\\-\\-shared\\fR\nA shared lock\n");
    CHECK(roff::option({"--timeout", " S", ""}) == ".TP\n\\fB\\-\\-timeout\\fR \\fIS\\fR\n\\&\n");
}

TEST_CASE("roff's markup keeps macros, escapes their arguments and the text, drops blank lines",
          "[unit][roff]") {
    CHECK(roff::render("\n.SH \"SEE ALSO\"\nmpctld(8)\n\n.TP\n--listen\nuse `x`\n") ==
          ".SH \"SEE ALSO\"\nmpctld(8)\n.TP\n\\-\\-listen\nuse \\fBx\\fR\n");
    CHECK(roff::render(".B --json\n") == ".B \\-\\-json\n");
    CHECK(roff::render("a \\ b") == "a \\e b\n");
}

TEST_CASE("roff documents a CLI11 app: usage, options by group, hidden ones left out", "[unit][roff]") {
    CLI::App app{"tool: does things", "tool"};
    bool json = false;
    app.add_flag("--json", json, "JSON out")->group("Global options");
    CLI::App* sub = app.add_subcommand("do-it", "Do it now");
    std::string path, name;
    bool quiet = false, secret = false;
    sub->add_option("path", path, "The file")->required();
    sub->add_option("-n,--name", name, "Its name")->type_name("NAME");
    sub->add_flag("-q,--quiet", quiet, "Say less")->group("Output");
    sub->add_flag("--secret", secret, "Not shown")->group("");
    sub->add_flag("--json", json, "JSON out")->group("Global options");
    sub->footer("Example: `tool do-it x`");
    app.add_subcommand("__hidden", "Not listed")->group("");

    CHECK(roff::command_path(*sub) == "tool do-it");
    CHECK(roff::usage(*sub) == "\\fBtool do\\-it\\fR [OPTIONS] path\n");
    std::string opts = roff::options(*sub, {"Global options"});
    CHECK(opts ==
          ".TP\n\\fBpath\\fR\nThe file\n"
          ".TP\n\\fB\\-n\\fR, \\fB\\-\\-name\\fR \\fINAME\\fR\nIts name\n"
          ".PP\n\\fIOutput:\\fR\n"
          ".TP\n\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR\nSay less\n");
    std::string page = roff::commands(app, {"Global options"});
    CHECK(page.starts_with(".SS \"tool do\\-it\"\n\\fBtool do\\-it\\fR [OPTIONS] path\n.PP\nDo it now\n"));
    CHECK(page.ends_with(".PP\nExample: \\fBtool do\\-it x\\fR\n"));
    CHECK(page.find("hidden") == std::string::npos);
    CHECK(page.find("secret") == std::string::npos);
    CHECK(page.find("JSON out") == std::string::npos);
    CHECK(roff::options(app, {}, true).find("\\fB\\-h\\fR, \\fB\\-\\-help\\fR") != std::string::npos);
}
