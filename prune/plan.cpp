#include "prune/plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "engine/autograd.h"
#include "models/layers.h"
#include "models/surgery.h"

namespace tpp::prune {

namespace {

// ---- globs ----

// One pattern element: a literal character, `?`, `*`, or a `[...]` class.
struct GlobToken {
  enum Kind { literal, any_char, any_run, char_class } kind = literal;
  char c = 0;
  bool negated = false;
  std::vector<std::pair<char, char>> ranges;  // inclusive; a single char is (c, c)

  bool matches(char x) const {
    if (kind == any_char) return true;
    if (kind == literal) return x == c;
    const bool in =
        std::any_of(ranges.begin(), ranges.end(), [x](const auto& r) { return r.first <= x && x <= r.second; });
    return in != negated;
  }
};

// fnmatch's reading: `[!` negates, a `]` right after `[` or `[!` is a member,
// `a-b` is a range (an inverted one matches nothing), `-` first or last is
// literal, and a `[` without its `]` is a literal `[`.
std::vector<GlobToken> tokenize(std::string_view p) {
  std::vector<GlobToken> tokens;
  for (size_t i = 0; i < p.size(); ++i) {
    GlobToken t;
    if (p[i] == '*') {
      t.kind = GlobToken::any_run;
    } else if (p[i] == '?') {
      t.kind = GlobToken::any_char;
    } else if (p[i] == '[') {
      size_t j = i + 1;
      if (j < p.size() && p[j] == '!') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') ++j;
      if (j >= p.size()) {
        t.c = '[';
      } else {
        t.kind = GlobToken::char_class;
        std::string_view set = p.substr(i + 1, j - i - 1);
        if (!set.empty() && set[0] == '!') {
          t.negated = true;
          set.remove_prefix(1);
        }
        for (size_t k = 0; k < set.size();) {
          if (k + 2 < set.size() && set[k + 1] == '-') {
            if (set[k] <= set[k + 2]) t.ranges.emplace_back(set[k], set[k + 2]);
            k += 3;
          } else {
            t.ranges.emplace_back(set[k], set[k]);
            ++k;
          }
        }
        i = j;
      }
    } else {
      t.c = p[i];
    }
    tokens.push_back(std::move(t));
  }
  return tokens;
}

// ---- spec lists ----

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_commas(std::string_view spec) {
  std::vector<std::string_view> items;
  if (trim(spec).empty()) return items;
  size_t start = 0;
  for (size_t comma = spec.find(',');; comma = spec.find(',', start)) {
    items.push_back(trim(spec.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

double parse_ratio(const std::string& spec, std::string_view pattern, std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double r = std::strtod(s.c_str(), &end);
  const bool number = !s.empty() && end == s.c_str() + s.size() && errno == 0 && std::isfinite(r);
  if (!(number && r >= 0 && r < 1))
    setting_fail("stage-pr '{}': the ratio '{}' of '{}' must be a number in [0, 1)", spec, text, pattern);
  return r;
}

Tensor weight_of(models::Module& m) {
  if (auto* conv = dynamic_cast<models::Conv2d*>(&m)) return conv->weight;
  return dynamic_cast<models::Linear&>(m).weight;
}

void check_every_glob_matches(const std::vector<std::string>& globs, const std::vector<models::LayerLink>& links,
                              const std::string& flag, const std::string& spec) {
  for (const std::string& glob : globs) {
    const bool used = std::any_of(links.begin(), links.end(), [&](const auto& l) { return glob_match(glob, l.name); });
    if (used) continue;
    std::vector<std::string> names;
    for (const models::LayerLink& l : links) names.push_back(l.name);
    setting_fail("{} '{}': the pattern '{}' matches no conv or linear layer of the model; its layers: {}", flag, spec, glob,
         fmt::join(names, ", "));
  }
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  const std::vector<GlobToken> tokens = tokenize(pattern);
  // Greedy with backtracking to the last `*`: each other token eats one char.
  size_t t = 0, x = 0;
  size_t star = std::string_view::npos, star_x = 0;
  while (x < text.size()) {
    if (t < tokens.size() && tokens[t].kind == GlobToken::any_run) {
      star = t++;
      star_x = x;
    } else if (t < tokens.size() && tokens[t].matches(text[x])) {
      ++t;
      ++x;
    } else if (star != std::string_view::npos) {
      t = star + 1;
      x = ++star_x;
    } else {
      return false;
    }
  }
  while (t < tokens.size() && tokens[t].kind == GlobToken::any_run) ++t;
  return t == tokens.size();
}

std::vector<RatioRule> parse_stage_pr(const std::string& spec) {
  std::vector<RatioRule> rules;
  for (const std::string_view item : split_commas(spec)) {
    const size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || trim(item.substr(0, colon)).empty())
      setting_fail("stage-pr '{}': the item '{}' is not pattern:ratio", spec, item);
    const std::string_view pattern = trim(item.substr(0, colon));
    rules.push_back({std::string(pattern), parse_ratio(spec, pattern, trim(item.substr(colon + 1)))});
  }
  return rules;
}

std::vector<std::string> parse_skip_layers(const std::string& spec) {
  std::vector<std::string> globs;
  for (const std::string_view item : split_commas(spec)) {
    if (item.empty()) setting_fail("skip-layers '{}': empty pattern", spec);
    globs.emplace_back(item);
  }
  return globs;
}

double layer_ratio(const std::string& layer, const std::vector<RatioRule>& rules,
                   const std::vector<std::string>& skip_layers) {
  for (const std::string& glob : skip_layers)
    if (glob_match(glob, layer)) return 0;
  double ratio = 0;
  for (const RatioRule& rule : rules)
    if (glob_match(rule.pattern, layer)) ratio = rule.ratio;
  return ratio;
}

namespace {

bool is_plain_name(std::string_view pattern) { return pattern.find_first_of("*?[") == std::string_view::npos; }

// A layer named outright ('classifier:0.5') is taken out of the plan; one a
// glob caught is excluded with `skip_layers`.
[[noreturn]] void refuse_unprunable(const std::string& stage_pr, const models::LayerLink& link, double ratio,
                                    const std::vector<RatioRule>& rules) {
  const auto named = std::find_if(rules.rbegin(), rules.rend(), [&](const RatioRule& r) {
    return is_plain_name(r.pattern) && glob_match(r.pattern, link.name);
  });
  if (named != rules.rend())
    setting_fail("stage-pr '{}': the filters of '{}' cannot be removed: {}; remove '{}:{:g}' from `stage_pr`", stage_pr,
         link.name, link.refusal, named->pattern, named->ratio);
  setting_fail("stage-pr '{}' gives '{}' the ratio {:g}, but its filters cannot be removed: {} (exclude it with `skip_layers`)",
       stage_pr, link.name, ratio, link.refusal);
}

}  // namespace

int64_t pruned_count(double ratio, int64_t filters) {
  const double n = static_cast<double>(filters);
  return std::min(static_cast<int64_t>(std::ceil(ratio * n)), static_cast<int64_t>(std::floor(0.995 * n)));
}

Tensor filter_scores(const Tensor& weight) {
  TPP_CHECK(weight.dim() >= 2 && weight.numel() > 0, "filter_scores: expected a conv or linear weight, got shape {}",
            shape_str(weight.sizes()));
  // Once per plan: the weights' L1 norms read on the host.
  const Tensor rows = weight.detach().to(Device::cpu()).to(DType::f64).contiguous().reshape({weight.size(0), -1});
  const int64_t n = rows.size(0), d = rows.size(1);
  std::vector<double> scores(static_cast<size_t>(n));
  const double* w = rows.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    double l1 = 0;
    for (int64_t j = 0; j < d; ++j) l1 += std::abs(w[i * d + j]);
    scores[static_cast<size_t>(i)] = l1 / static_cast<double>(d);
  }
  return from_vector<double>(scores, {n});
}

std::vector<int64_t> smallest_scores(const Tensor& scores, int64_t count) {
  const std::vector<double> s = scores.to_vector<double>();
  TPP_CHECK(count >= 0 && count <= static_cast<int64_t>(s.size()), "smallest_scores: cannot pick {} of {} scores",
            count, s.size());
  std::vector<int64_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return s[static_cast<size_t>(a)] < s[static_cast<size_t>(b)]; });
  order.resize(static_cast<size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

std::map<std::string, int64_t> PrunePlan::widths() const {
  std::map<std::string, int64_t> out;
  for (const LayerPlan& l : layers) out.emplace(l.name, l.width());
  return out;
}

std::map<std::string, Tensor> PrunePlan::kept_indices() const {
  std::map<std::string, Tensor> out;
  for (const LayerPlan& l : layers)
    if (!l.pruned.empty()) out.emplace(l.name, from_vector<int64_t>(l.kept, {l.width()}));
  return out;
}

const LayerPlan& PrunePlan::layer(const std::string& name) const {
  const auto it = std::find_if(layers.begin(), layers.end(), [&](const LayerPlan& l) { return l.name == name; });
  TPP_CHECK(it != layers.end(), "plan: no conv or linear layer named '{}'", name);
  return *it;
}

int64_t PrunePlan::pruned_layers() const {
  return std::count_if(layers.begin(), layers.end(), [](const LayerPlan& l) { return !l.pruned.empty(); });
}

PrunePlan make_plan(models::Module& model, const PlanSpec& spec) {
  const std::vector<RatioRule> rules = parse_stage_pr(spec.stage_pr);
  const std::vector<std::string> skips = parse_skip_layers(spec.skip_layers);
  const std::vector<models::LayerLink> links = models::trace_layer_links(model);
  std::vector<std::string> patterns;
  for (const RatioRule& r : rules) patterns.push_back(r.pattern);
  check_every_glob_matches(patterns, links, "stage-pr", spec.stage_pr);
  check_every_glob_matches(skips, links, "skip-layers", spec.skip_layers);

  std::map<std::string, models::Module*> modules;
  for (auto& [name, m] : model.named_modules()) modules.emplace(name, m);
  PrunePlan plan;
  for (const models::LayerLink& link : links) {
    LayerPlan& l = plan.layers.emplace_back();
    l.name = link.name;
    l.exec_index = link.exec_index;
    if (!link.batch_norms.empty()) l.batch_norm = link.batch_norms.front();
    l.ratio = layer_ratio(link.name, rules, skips);
    const Tensor weight = weight_of(*modules.at(link.name));
    l.total = weight.size(0);
    const int64_t n = pruned_count(l.ratio, l.total);
    if (n > 0 && !link.prunable()) refuse_unprunable(spec.stage_pr, link, l.ratio, rules);
    l.pruned = n > 0 ? smallest_scores(filter_scores(weight), n) : std::vector<int64_t>{};
    for (int64_t i = 0; i < l.total; ++i)
      if (!std::binary_search(l.pruned.begin(), l.pruned.end(), i)) l.kept.push_back(i);
  }
  return plan;
}

}  // namespace tpp::prune
