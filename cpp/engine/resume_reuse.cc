#include "engine/resume_reuse.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn {
namespace {

// 65964 -> "65,964": the counts of a big foreach are read at a glance.
std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

ResumeReuse::ResumeReuse(const Graph& graph, int64_t origin_run_id, const std::string& origin_graph_json,
                         bool enabled, std::string disabled_why)
    : graph_(graph),
      origin_run_id_(origin_run_id),
      enabled_(enabled),
      disabled_why_(std::move(disabled_why)),
      unchanged_(graph.steps().size(), false),
      origin_unknown_(graph.steps().size(), true),
      tally_(graph.steps().size()) {
  std::unordered_map<std::string, std::string> origin_hashes;
  nlohmann::json spec = nlohmann::json::parse(origin_graph_json, nullptr, /*allow_exceptions=*/false);
  if (spec.is_object() && spec.contains("steps") && spec["steps"].is_array()) {
    for (const auto& s : spec["steps"]) {
      if (!s.is_object() || !s.contains("name") || !s["name"].is_string()) continue;
      auto hash = s.find("code_hash");
      if (hash != s.end() && hash->is_string() && !hash->get<std::string>().empty()) {
        origin_hashes[s["name"].get<std::string>()] = hash->get<std::string>();
      }
    }
  }
  for (size_t i = 0; i < graph.steps().size(); ++i) {
    const Step& step = graph.steps()[i];
    auto it = origin_hashes.find(step.name);
    origin_unknown_[i] = it == origin_hashes.end();
    unchanged_[i] = !origin_unknown_[i] && !step.code_hash.empty() && it->second == step.code_hash;
  }
}

bool ResumeReuse::MayClone(StepId step, const std::vector<int64_t>& parents_origin,
                           const TaskRecord& twin) const {
  if (!enabled_ || !StepUnchanged(step)) return false;
  if (std::any_of(parents_origin.begin(), parents_origin.end(), [](int64_t id) { return id < 0; })) {
    return false;
  }
  std::vector<int64_t> ours = parents_origin, theirs = twin.parents;
  std::sort(ours.begin(), ours.end());
  std::sort(theirs.begin(), theirs.end());
  return ours == theirs;
}

void ResumeReuse::Count(StepId step, bool rerun, bool cloned, bool split) {
  Tally& t = tally_[static_cast<size_t>(step)];
  ++t.total;
  if (cloned) ++t.cloned;
  t.split = t.split || split;
  t.rerun = t.rerun || rerun;
}

std::vector<std::string> ResumeReuse::StartNotes(const std::vector<bool>& rerun,
                                                 const std::vector<bool>& had_finished) const {
  std::vector<std::string> notes;
  for (size_t i = 0; i < graph_.steps().size(); ++i) {
    if (!rerun[i] || !had_finished[i] || (enabled_ && unchanged_[i])) continue;
    std::string why = !enabled_                ? disabled_why_
                      : origin_unknown_[i]     ? fmt::format("run {} recorded no code hash for it", origin_run_id_)
                                               : fmt::format("its code changed since run {}", origin_run_id_);
    notes.push_back(fmt::format("re-running every task of '{}': {}", graph_.steps()[i].name, why));
  }
  return notes;
}

std::vector<std::string> ResumeReuse::EndNotes() const {
  std::vector<std::string> notes;
  for (size_t i = 0; i < tally_.size(); ++i) {
    const Tally& t = tally_[i];
    if (t.cloned == 0 || (!t.rerun && t.cloned == t.total)) continue;
    std::string why = t.rerun ? fmt::format("its code is unchanged since run {}", origin_run_id_)
                              : fmt::format("the rest had not finished in run {}", origin_run_id_);
    notes.push_back(fmt::format("cloned {} of {} {} of '{}': {}", Grouped(t.cloned), Grouped(t.total),
                                t.split ? "splits" : "tasks", graph_.steps()[i].name, why));
  }
  return notes;
}

}  // namespace cairn
