// mpctl map: its options, and a MapRun (map_run.hpp) to run it.

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/commands/map_run.hpp>

namespace mpctl::cli {

void add_map_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;  // a single subcommand
    auto* sub = app.add_subcommand("map", "Run a command once per item, in parallel (Pool.map, xargs -P)");
    auto o = std::make_shared<MapOptions>();
    sub->add_option("-j,--jobs", o->jobs, "At most N tasks of this map at once (default: the pool's size)")
        ->check(whole_number(1, 100000))
        ->type_name("N");
    sub->add_flag("--unordered", o->unordered, "Print results in completion order (default: input order)");
    sub->add_option("--chunksize", o->chunksize, "Up to N items per task, appended as arguments")
        ->check(whole_number(1, 100000))
        ->type_name("N");
    sub->add_option("--halt", o->halt, "now,fail=N: stop all after N failures; soon,fail=N: start no more");
    sub->add_option("--joblog", o->joblog, "Write one TSV line per finished task to FILE");
    sub->add_option("--colsep", o->colsep,
                    "Split items into columns {1} {2}... where this regular expression (POSIX ERE) matches");
    sub->add_flag("--progress", o->progress, "Show a progress bar on stderr even when it is not a terminal");
    sub->add_flag("--no-progress", o->no_progress, "Never show the progress bar");
    add_task_options(sub, o->task);
    sub->prefix_command();
    set_usage_tail(sub, "[--] CMD [ARG...] [::: ITEM... [::: ITEM...]...]");
    sub->fallthrough(false);  // its words belong to the command, not to the root app
    add_global_options(*sub, ctx.global);
    sub->footer(
        "Items come after ::: (several ::: give every combination) or one per line of stdin; {} is the "
        "item, {1} {2}... its columns (--colsep) or its values by :::, and without a placeholder the item is "
        "appended.\nExample: mpctl map -j4 -- gzip -k ::: a.txt b.txt\n"
        "         ls *.wav | mpctl map --unordered -- flac {}");
    sub->callback([&ctx, sub, o] {
        auto words = command_words(sub, ctx);
        ctx.action = [&ctx, o, words] {
            MapRun run(ctx, *o, words);
            return run.run();
        };
    });
}

}  // namespace mpctl::cli
