"""The Pulumi program: settings -> sizing -> render -> Linode resources. Logic is in components/."""

import pulumi

from components.settings import load_pulumi_config
from components.sizing import size

stack = pulumi.get_stack()
settings = load_pulumi_config(stack)
sizing = size(settings, source=f"stacks/Pulumi.{stack}.yaml")
pulumi.export("sizing", {line.name: line.mb for line in sizing.budget.lines()})
