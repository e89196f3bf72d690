"""CloudFormation and Elastic Beanstalk behaviours the launchers' finders read, where moto
5.2.5 answers otherwise than AWS.

* DescribeStacks ``Parameters``: AWS answers each parameter's value as given (a ``List<…>``
  or ``CommaDelimitedList`` one comma-joined, ``a,b``), an SSM-parameter type's value is the
  parameter's *name* with the value it resolved to in ``ResolvedValue``, and a ``NoEcho``
  value is ``****``. moto answered the Python ``repr`` of a list (``['a', 'b']``), the
  resolved value of an SSM type in place of its name, and compared NoEcho keys with values.
* Elastic Beanstalk keeps an environment's option settings (CreateEnvironment's
  ``OptionSettings``, changed by UpdateEnvironment's ``OptionSettings`` and
  ``OptionsToRemove``) and serves DescribeConfigurationSettings for an environment (moto:
  not implemented), answering the settings given (AWS also lists every default of the
  platform; the defaults name no image). A terminated environment keeps none.
"""

from __future__ import annotations

from typing import Any

from .helpers import patch

EB_NAMESPACE = "aws:autoscaling:launchconfiguration"


def _joined(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


@patch("cloudformation: DescribeStacks Parameters as AWS answers them (lists a,b; SSM types)")
def cfn_parameter_list() -> None:
    from moto.cloudformation.models import Stack

    def parameter_list(self: Any) -> list[dict[str, Any]]:
        rm = self.resource_map
        slots = (getattr(rm, "_template", None) or {}).get("Parameters") or {}
        given = getattr(rm, "input_parameters", None) or {}
        out = []
        for key, value in rm.resolved_parameters.items():
            slot = slots.get(key) or {}
            typ = str(slot.get("Type", "String"))
            p: dict[str, Any] = {"ParameterKey": key}
            if slot.get("NoEcho") in (True, "true", "True"):
                p["ParameterValue"] = "****"
            elif typ.startswith("AWS::SSM::Parameter::"):
                p["ParameterValue"] = str(given.get(key, slot.get("Default", "")))
                p["ResolvedValue"] = _joined(value)
            else:
                p["ParameterValue"] = _joined(value)
            out.append(p)
        return out

    Stack.parameter_list = property(parameter_list)  # type: ignore[method-assign,assignment]


def _option_list(raw: Any) -> list[dict[str, str]]:
    return [
        {
            "Namespace": str(o.get("Namespace", "")),
            "OptionName": str(o.get("OptionName", "")),
            **({"ResourceName": o["ResourceName"]} if o.get("ResourceName") else {}),
            "Value": str(o.get("Value", "")),
        }
        for o in raw or []
    ]


@patch("elasticbeanstalk: environments keep their option settings; DescribeConfigurationSettings")
def beanstalk_option_settings() -> None:
    from moto.core.responses import ActionResult
    from moto.elasticbeanstalk.exceptions import InvalidParameterValueError
    from moto.elasticbeanstalk.responses import EBResponse

    plain_create = EBResponse.create_environment

    def _find(self: Any, app_name: str, env_name: str) -> Any:
        app = self.elasticbeanstalk_backend.applications.get(app_name)
        env = app.environments.get(env_name) if app is not None else None
        if env is None:
            raise InvalidParameterValueError(
                f"No Environment found for EnvironmentName = '{env_name}'."
            )
        return env

    def create_environment(self: Any) -> Any:
        result = plain_create(self)
        env = _find(self, self._get_param("ApplicationName"), self._get_param("EnvironmentName"))
        env.amictl_options = _option_list(self._get_param("OptionSettings", []))
        return result

    def update_environment(self: Any) -> Any:
        name = self._get_param("EnvironmentName")
        env = None
        for app in self.elasticbeanstalk_backend.applications.values():
            env = app.environments.get(name) or env
        if env is None:
            raise InvalidParameterValueError(
                f"No Environment found for EnvironmentName = '{name}'."
            )
        opts = {(o["Namespace"], o["OptionName"]): o for o in getattr(env, "amictl_options", [])}
        for o in self._get_param("OptionsToRemove", []) or []:
            opts.pop((o.get("Namespace", ""), o.get("OptionName", "")), None)
        for o in _option_list(self._get_param("OptionSettings", [])):
            opts[(o["Namespace"], o["OptionName"])] = o
        env.amictl_options = list(opts.values())
        return ActionResult(env)

    def terminate_environment(self: Any) -> Any:
        name = self._get_param("EnvironmentName")
        for app in self.elasticbeanstalk_backend.applications.values():
            env = app.environments.pop(name, None)
            if env is not None:
                env.status = "Terminated"
                return ActionResult(env)
        raise InvalidParameterValueError(f"No Environment found for EnvironmentName = '{name}'.")

    def describe_configuration_settings(self: Any) -> Any:
        app_name = self._get_param("ApplicationName")
        env = _find(self, app_name, self._get_param("EnvironmentName"))
        return ActionResult(
            {
                "ConfigurationSettings": [
                    {
                        "ApplicationName": app_name,
                        "EnvironmentName": env.environment_name,
                        "SolutionStackName": env.solution_stack_name,
                        "DeploymentStatus": "deployed",
                        "OptionSettings": list(getattr(env, "amictl_options", [])),
                    }
                ]
            }
        )

    EBResponse.create_environment = create_environment  # type: ignore[method-assign]
    EBResponse.update_environment = update_environment  # type: ignore[attr-defined]
    EBResponse.terminate_environment = terminate_environment  # type: ignore[attr-defined]
    EBResponse.describe_configuration_settings = describe_configuration_settings  # type: ignore[attr-defined]
