// The command template of `mpctl map`: placeholders, columns, the append rule, --shell quoting, chunks.

#include <catch2/catch.hpp>

#include <mpctl/cli/map/command_template.hpp>
#include <mpctl/cli/map/items.hpp>

using mpctl::cli::map::ColumnSeparator;
using mpctl::cli::map::CommandTemplate;
using mpctl::cli::map::TemplateOptions;
using V = std::vector<std::string>;

TEST_CASE("map: without a placeholder the item is appended as the last argument", "[unit][map]") {
    CommandTemplate t({"echo", "-n"}, {});
    CHECK_FALSE(t.has_placeholder());
    CHECK(t.argv({"a b"}) == V{"echo", "-n", "a b"});
}

TEST_CASE("map: {} is replaced by the whole item, also inside a longer word", "[unit][map]") {
    CommandTemplate t({"cp", "{}", "backup/{}.bak"}, {});
    CHECK(t.has_placeholder());
    CHECK(t.argv({"x y"}) == V{"cp", "x y", "backup/x y.bak"});
}

TEST_CASE("map: words without a placeholder are kept when another word has one", "[unit][map]") {
    CommandTemplate t({"grep", "-c", "{}", "file"}, {});
    CHECK(t.argv({"pat"}) == V{"grep", "-c", "pat", "file"});
}

TEST_CASE("map: without --colsep {1} is the item and {2} is empty, as GNU parallel has them", "[unit][map]") {
    CommandTemplate t({"mv", "{1}", "[{2}]"}, {});
    CHECK(t.argv({"  a \t b  c"}) == V{"mv", "  a \t b  c", "[]"});
}

TEST_CASE("map: --colsep splits where its regular expression matches and keeps empty columns",
          "[unit][map]") {
    TemplateOptions o;
    o.colsep = ",";
    CommandTemplate t({"echo", "{1}-{3}"}, o);
    CHECK(t.argv({"a,,c"}) == V{"echo", "a-c"});
    CHECK(ColumnSeparator("::").column("a::b", 2) == "b");
    CHECK(ColumnSeparator(",").column("a b", 1) == "a b");
    CHECK(ColumnSeparator(",").column("a,b", 5).empty());
    // A leading separator makes an empty first column, as in GNU parallel.
    CHECK(ColumnSeparator(" +").column("  a  b", 1).empty());
    CHECK(ColumnSeparator(" +").column("  a  b", 2) == "a");
    CHECK(ColumnSeparator(" +").column("  a  b", 3) == "b");
    CHECK(ColumnSeparator("\\t").column("x\ty", 2) == "y");
    CHECK(ColumnSeparator("\\s+").column("x \t y", 2) == "y");
    CHECK(ColumnSeparator("[,;]").column("a;b,c", 3) == "c");
    // Columns are trimmed of spaces and tabs, as GNU parallel's under --colsep.
    CHECK(ColumnSeparator(",").column("  x , y\t", 1) == "x");
    CHECK(ColumnSeparator(",").column("  x , y\t", 2) == "y");
    CHECK(ColumnSeparator(",").column("x, \t ,y", 2).empty());
    // A separator that matches nothing splits nothing.
    CHECK(ColumnSeparator("x*").column("abc", 1) == "abc");
    CHECK(ColumnSeparator("^a").column("aXa", 2) == "Xa");
    CHECK_THROWS_AS(ColumnSeparator("("), std::invalid_argument);
}

TEST_CASE("map: braces that are not placeholders stay literal", "[unit][map]") {
    CommandTemplate t({"echo", "{x}", "{0}", "{", "}{"}, {});
    CHECK_FALSE(t.has_placeholder());
    CHECK(t.argv({"i"}) == V{"echo", "{x}", "{0}", "{", "}{", "i"});
}

TEST_CASE("map: without --shell items are never interpreted", "[unit][map]") {
    CommandTemplate t({"printf", "%s", "{}"}, {});
    std::string nasty = "a 'b' \"c\" $HOME; rm -rf / \\ `x`";
    CHECK(t.argv({nasty}) == V{"printf", "%s", nasty});
}

TEST_CASE("map: with --shell substituted items are single-quoted", "[unit][map]") {
    TemplateOptions o;
    o.shell = true;
    CommandTemplate t({"printf", "%s", "{}", "|", "wc", "-c"}, o);
    CHECK(t.script({"it's $x; y"}) == R"(printf %s 'it'\''s $x; y' | wc -c)");
}

TEST_CASE("map: with --shell and no placeholder the quoted item is appended", "[unit][map]") {
    TemplateOptions o;
    o.shell = true;
    CommandTemplate t({"echo"}, o);
    CHECK(t.script({"a b"}) == "echo 'a b'");
    CHECK(t.script({"plain"}) == "echo plain");
}

TEST_CASE("map: with --shell columns are quoted one by one", "[unit][map]") {
    TemplateOptions o;
    o.shell = true;
    o.colsep = ":";
    CommandTemplate t({"echo {2} {1}"}, o);
    CHECK(t.script({"a b:c$d"}) == "echo 'c$d' 'a b'");
}

TEST_CASE("map: --chunksize appends every item of a chunk, or fills a lone {}", "[unit][map]") {
    TemplateOptions o;
    o.chunksize = 3;
    CHECK(CommandTemplate({"echo"}, o).argv({"a", "b c"}) == V{"echo", "a", "b c"});
    CHECK(CommandTemplate({"echo", "{}", "end"}, o).argv({"a", "b"}) == V{"echo", "a", "b", "end"});
    o.shell = true;
    CHECK(CommandTemplate({"echo", "{}", "end"}, o).script({"a", "b c"}) == "echo a 'b c' end");
    CHECK(CommandTemplate({"echo"}, o).script({"a", "b c"}) == "echo a 'b c'");
}

TEST_CASE("map: --chunksize refuses placeholders that name one item", "[unit][map]") {
    TemplateOptions o;
    o.chunksize = 2;
    CHECK_THROWS_AS(CommandTemplate({"echo", "{1}"}, o), std::invalid_argument);
    CHECK_THROWS_AS(CommandTemplate({"echo", "x{}"}, o), std::invalid_argument);
}

TEST_CASE("map: an empty command or an empty --colsep is refused", "[unit][map]") {
    CHECK_THROWS_AS(CommandTemplate({}, {}), std::invalid_argument);
    TemplateOptions o;
    o.colsep = "";
    CHECK_THROWS_AS(CommandTemplate({"echo"}, o), std::invalid_argument);
}

TEST_CASE("map: a tuple of several ::: groups fills {N} by group, {} with its values, and appends each",
          "[unit][map]") {
    const std::string tuple = std::string("a b") + mpctl::cli::map::k_field_separator + "1";
    CHECK(CommandTemplate({"echo"}, {}).argv({tuple}) == V{"echo", "a b", "1"});
    CHECK(CommandTemplate({"echo", "{2}:{1}", "{3}"}, {}).argv({tuple}) == V{"echo", "1:a b", ""});
    CHECK(CommandTemplate({"echo", "[{}]"}, {}).argv({tuple}) == V{"echo", "[a b 1]"});
    TemplateOptions shell;
    shell.shell = true;
    CHECK(CommandTemplate({"echo"}, shell).script({tuple}) == "echo 'a b' 1");
    CHECK(CommandTemplate({"echo", "{1}", "{}"}, shell).script({tuple}) == "echo 'a b' 'a b' 1");
}
